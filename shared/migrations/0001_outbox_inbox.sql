-- Transactional outbox: written in the same transaction as the state change it announces.
CREATE TABLE outbox_message (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    key text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX ix_outbox_message_unpublished ON outbox_message (id) WHERE published_at IS NULL;

-- Wake the relay the moment an outbox row commits (NOTIFY is delivered on commit).
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_message', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_message_notify AFTER INSERT ON outbox_message
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();

-- Inbox: event ids a consumer group has handled, so a redelivery has no second effect.
CREATE TABLE inbox_message (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
