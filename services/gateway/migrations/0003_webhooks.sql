-- Webhook subscriptions: signing secrets are stored encrypted (a database dump alone
-- cannot forge signatures); the previous secret stays valid until its grace period ends.
CREATE TABLE webhook (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    event_types text[] NOT NULL,
    status text NOT NULL DEFAULT 'active',
    secret_encrypted bytea NOT NULL,
    previous_secret_encrypted bytea,
    previous_secret_expires_at timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since timestamptz,
    disabled_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_webhook_org_id ON webhook (org_id, created_at, id);

-- One delivery per (webhook, event). `seq` orders one aggregate's deliveries to one
-- endpoint; a pending delivery is claimed when due and no earlier one of its aggregate
-- is still pending. A claim leases the row by moving `next_attempt_at` ahead.
CREATE TABLE webhook_delivery (
    id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    webhook_id uuid NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
    org_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    aggregate_key text NOT NULL,
    payload text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    attempt_limit integer,
    last_status_code integer,
    last_error text,
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX ix_webhook_delivery_due ON webhook_delivery (next_attempt_at, seq)
    WHERE status = 'pending';
CREATE INDEX ix_webhook_delivery_aggregate ON webhook_delivery (webhook_id, aggregate_key, seq)
    WHERE status = 'pending';
CREATE INDEX ix_webhook_delivery_log ON webhook_delivery (webhook_id, seq);

-- Wake the delivery workers the moment new deliveries commit.
CREATE FUNCTION notify_webhook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('webhook_delivery', '');
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_delivery_notify AFTER INSERT ON webhook_delivery
    FOR EACH STATEMENT EXECUTE FUNCTION notify_webhook_delivery();
