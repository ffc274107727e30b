-- Each person's dated HRIS states, kept from `person.*` events (their `history_entry`):
-- one row per (person, effective_date), the newest version of that entry winning, so
-- redelivered and reordered events leave the same history. Outcomes read only this.
CREATE TABLE person_history (
    person_id uuid NOT NULL,
    effective_date date NOT NULL,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    version integer NOT NULL,
    employment_status text NOT NULL,
    job_level integer,
    department text,
    CONSTRAINT pk_person_history PRIMARY KEY (person_id, effective_date)
);
CREATE INDEX ix_person_history_org ON person_history (org_id, person_id, effective_date);
CREATE INDEX ix_person_history_external_id
    ON person_history (org_id, external_id, effective_date);
