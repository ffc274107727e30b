-- Projections of programs and enrollments (from profiles' events), matches, matching runs.

CREATE TABLE program (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    format text NOT NULL,
    status text NOT NULL,
    max_mentees_per_mentor integer NOT NULL,
    criteria jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enrollment (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    person_id uuid NOT NULL,
    employee_external_id text NOT NULL,
    version integer NOT NULL,
    role text NOT NULL,
    skills jsonb NOT NULL DEFAULT '[]',
    goals text[] NOT NULL DEFAULT '{}',
    languages text[] NOT NULL DEFAULT '{}',
    capacity integer,
    preferences jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_enrollment_program ON enrollment (program_id, status);
CREATE INDEX ix_enrollment_person ON enrollment (person_id);

-- Counters bumped by every change that can change a candidate pool, so a cached pool is
-- reused only while nothing changed: one per program (its enrollments and matches) and one
-- per organization (its people: their data and everyone's manager chains).
CREATE TABLE pool_revision (
    scope_id uuid PRIMARY KEY,
    revision bigint NOT NULL
);

CREATE TABLE match (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    mentee_enrollment_id uuid NOT NULL,
    mentor_enrollment_id uuid NOT NULL,
    mentee_person_id uuid,
    mentor_person_id uuid,
    mentee_external_id text,
    mentor_external_id text,
    status text NOT NULL,
    score double precision,
    breakdown jsonb NOT NULL DEFAULT '[]',
    reasons jsonb NOT NULL DEFAULT '[]',
    end_reason text,
    run_id uuid,
    version integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- A mentee has at most one open (proposed or active) match per enrollment: the database,
-- not a read-then-write check, settles two concurrent requests.
CREATE UNIQUE INDEX uq_match_open_mentee ON match (mentee_enrollment_id)
    WHERE status IN ('proposed', 'active');
CREATE INDEX ix_match_mentor_open ON match (mentor_enrollment_id)
    WHERE status IN ('proposed', 'active');
CREATE INDEX ix_match_program ON match (program_id);
CREATE INDEX ix_match_org_created ON match (org_id, created_at, id);

CREATE TABLE matching_run (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    status text NOT NULL,
    objective text NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    stage text,
    progress real NOT NULL DEFAULT 0,
    inputs_version jsonb,
    total_score double precision,
    matched_count integer,
    proposals jsonb,
    unmatched jsonb,
    warnings jsonb NOT NULL DEFAULT '[]',
    timings jsonb NOT NULL DEFAULT '{}',
    error text,
    attempts integer NOT NULL DEFAULT 0,
    heartbeat_at timestamptz,
    applied_at timestamptz,
    applied jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_matching_run_queue ON matching_run (created_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX ix_matching_run_program ON matching_run (program_id, created_at, id);
