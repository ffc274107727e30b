-- Effective dating: a person's job level, when their current state took effect in the
-- HRIS, and every dated state synced (older states land here without touching `person`).
ALTER TABLE person ADD COLUMN job_level integer;
ALTER TABLE person ADD COLUMN effective_date date;
UPDATE person SET effective_date = created_at::date;
ALTER TABLE person ALTER COLUMN effective_date SET NOT NULL;
ALTER TABLE person ALTER COLUMN effective_date SET DEFAULT current_date;

CREATE TABLE employee_history (
    person_id uuid NOT NULL REFERENCES person (id),
    effective_date date NOT NULL,
    org_id uuid NOT NULL,
    -- The person's version when this entry was last written.
    version integer NOT NULL,
    employment_status text NOT NULL,
    job_level integer,
    department text,
    division text,
    title text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_employee_history PRIMARY KEY (person_id, effective_date)
);

INSERT INTO employee_history
    (person_id, effective_date, org_id, version, employment_status, department, division, title)
SELECT id, effective_date, org_id, version, employment_status, department, division, title
FROM person;
