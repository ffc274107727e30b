-- Matching's projection of people: what scoring and hard rules need, nothing more.
CREATE TABLE person (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    department text,
    division text,
    title text,
    time_zone text,
    languages text[] NOT NULL DEFAULT '{}',
    manager_external_id text,
    hire_date date,
    employment_status text NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_person_org_id_external_id ON person (org_id, external_id);
