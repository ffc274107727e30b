-- API keys: only a SHA-256 of the secret is stored; the key is shown once, at creation.
CREATE TABLE api_key (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    name text NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    secret_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX ix_api_key_org_id ON api_key (org_id, created_at, id);
