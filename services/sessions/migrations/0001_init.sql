-- Sessions' projection of people: who can be scheduled, in which time zone.
CREATE TABLE person (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    email text,
    display_name text,
    time_zone text,
    employment_status text NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_person_org_id_external_id ON person (org_id, external_id);
