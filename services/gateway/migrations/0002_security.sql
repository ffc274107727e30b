-- Keys created before scopes had to be named held '{}', which then meant "every scope":
-- say so explicitly, since an empty grant now grants nothing.
UPDATE api_key SET scopes = '{*}' WHERE scopes = '{}';

-- Rate limits: one counter per budget and fixed window, shared by every gateway replica.
-- UNLOGGED: counters are worth losing in a crash rather than paying WAL on every request.
CREATE UNLOGGED TABLE rate_limit_counter (
    bucket text NOT NULL,
    window_start bigint NOT NULL,  -- epoch seconds
    hits integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- Idempotency-Key records: the first request's answer, replayed to its retries for 24 h.
CREATE TABLE idempotency_record (
    owner text NOT NULL,  -- the organization id (or "admin" for the platform admin)
    idempotency_key text NOT NULL,
    fingerprint bytea NOT NULL,  -- SHA-256 of method, path, query and body
    status integer,  -- NULL while the first request is still running
    headers jsonb,
    body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (owner, idempotency_key)
);
CREATE INDEX ix_idempotency_record_expires_at ON idempotency_record (expires_at);
