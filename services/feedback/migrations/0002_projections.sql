-- Feedback's projections of programs, enrollments and matches, kept from `program.*`,
-- `enrollment.*` and `match.*` events. State columns follow the newest `version`; the
-- `*_at` columns are the times of the events that set them (CloudEvents `time`), each kept
-- from the first event of its kind, so a late or replayed event never moves them.
CREATE TABLE program (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    name text NOT NULL,
    format text NOT NULL,
    status text NOT NULL,
    starts_on date,
    ends_on date,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_program_org_id ON program (org_id);

CREATE TABLE enrollment (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    person_id uuid NOT NULL,
    employee_external_id text NOT NULL,
    role text NOT NULL,
    status text NOT NULL,
    version integer NOT NULL,
    created_at timestamptz,
    withdrawn_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_enrollment_program_id ON enrollment (program_id, role);

CREATE TABLE match (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    group_id uuid,
    mentee_enrollment_id uuid NOT NULL,
    mentor_enrollment_id uuid NOT NULL,
    mentee_person_id uuid,
    mentor_person_id uuid,
    mentee_external_id text,
    mentor_external_id text,
    status text NOT NULL,
    score double precision,
    end_reason text,
    version integer NOT NULL,
    created_at timestamptz,
    activated_at timestamptz,
    ended_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_match_program_id ON match (program_id, status);
CREATE INDEX ix_match_mentee_external_id ON match (org_id, mentee_external_id);
CREATE INDEX ix_match_mentor_external_id ON match (org_id, mentor_external_id);
CREATE INDEX ix_match_group_id ON match (group_id) WHERE group_id IS NOT NULL;
