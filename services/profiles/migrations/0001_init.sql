CREATE TABLE organization (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE person (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization (id),
    external_id text NOT NULL,
    email text,
    given_name text,
    family_name text,
    display_name text,
    title text,
    department text,
    division text,
    cost_center text,
    location text,
    time_zone text,
    languages text[] NOT NULL DEFAULT '{}',
    manager_external_id text,
    hire_date date,
    employment_status text NOT NULL DEFAULT 'active',
    attributes jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_person_org_id_external_id UNIQUE (org_id, external_id)
);
CREATE INDEX ix_person_org_id_manager ON person (org_id, manager_external_id);
