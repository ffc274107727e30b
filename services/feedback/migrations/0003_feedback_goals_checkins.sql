-- Sessions as feedback sees them (from `session.*`), and the outcome of each occurrence:
-- a one-off session is one occurrence (occurrence_starts_at NULL), a series one per
-- occurrence an event named. An outcome follows the newest session version that spoke of
-- that occurrence, so reordered events settle on the same answer.
CREATE TABLE session (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid,
    match_id uuid,
    group_id uuid,
    starts_at timestamptz NOT NULL,
    duration_minutes integer NOT NULL,
    rrule text,
    status text NOT NULL,
    participants jsonb NOT NULL DEFAULT '[]',
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE session_occurrence (
    id bigserial PRIMARY KEY,
    org_id uuid NOT NULL,
    session_id uuid NOT NULL,
    occurrence_starts_at timestamptz,
    program_id uuid,
    match_id uuid,
    group_id uuid,
    -- When it took (or would have taken) place: the occurrence's start, else the session's.
    held_at timestamptz NOT NULL,
    status text NOT NULL,  -- completed | no_show | cancelled
    version integer NOT NULL
);
CREATE UNIQUE INDEX uq_session_occurrence_key
    ON session_occurrence (session_id, COALESCE(occurrence_starts_at, '-infinity'::timestamptz));
CREATE INDEX ix_session_occurrence_program
    ON session_occurrence (program_id, held_at) INCLUDE (status, match_id);
CREATE INDEX ix_session_occurrence_match
    ON session_occurrence (match_id, held_at) WHERE status = 'completed';

-- One request per person per completed occurrence (kind session) or per ended match
-- (kind match_end): the unique indexes make creating them idempotent.
CREATE TABLE feedback_request (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    kind text NOT NULL,  -- session | match_end
    program_id uuid,
    match_id uuid,
    group_id uuid,
    session_id uuid,
    occurrence_starts_at timestamptz,
    person_id uuid,
    employee_external_id text NOT NULL,
    role text,
    status text NOT NULL DEFAULT 'pending',  -- pending | answered (expired: pending past expires_at)
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    answered_at timestamptz
);
CREATE UNIQUE INDEX uq_feedback_request_session
    ON feedback_request (session_id, COALESCE(occurrence_starts_at, '-infinity'::timestamptz),
                         employee_external_id)
    WHERE kind = 'session';
CREATE UNIQUE INDEX uq_feedback_request_match_end
    ON feedback_request (match_id, employee_external_id) WHERE kind = 'match_end';
CREATE INDEX ix_feedback_request_employee
    ON feedback_request (org_id, employee_external_id, created_at, id);
CREATE INDEX ix_feedback_request_org ON feedback_request (org_id, created_at, id);

CREATE TABLE feedback (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    request_id uuid NOT NULL UNIQUE REFERENCES feedback_request (id),
    kind text NOT NULL,
    program_id uuid,
    match_id uuid,
    session_id uuid,
    employee_external_id text NOT NULL,
    role text,
    rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    nps smallint CHECK (nps BETWEEN 0 AND 10),
    comment text,
    tags text[] NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX ix_feedback_program ON feedback (program_id, created_at) INCLUDE (rating, nps);
CREATE INDEX ix_feedback_match ON feedback (match_id, created_at) INCLUDE (rating);

CREATE TABLE checkin (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    match_id uuid NOT NULL,
    program_id uuid NOT NULL,
    employee_external_id text NOT NULL,
    role text NOT NULL,
    rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment text,
    created_at timestamptz NOT NULL
);
CREATE INDEX ix_checkin_match ON checkin (match_id, created_at, id);

CREATE TABLE goal (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    match_id uuid NOT NULL,
    program_id uuid NOT NULL,
    mentee_external_id text,
    title text NOT NULL,
    description text,
    measure text,
    target_date date,
    milestones jsonb NOT NULL DEFAULT '[]',
    status text NOT NULL,
    progress smallint NOT NULL CHECK (progress BETWEEN 0 AND 100),
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX ix_goal_org ON goal (org_id, created_at, id);
CREATE INDEX ix_goal_match ON goal (match_id, created_at, id);
CREATE INDEX ix_goal_program ON goal (program_id, created_at) INCLUDE (status);

-- Every change of a goal: who, when, and the fields as they became.
CREATE TABLE goal_update (
    id bigserial PRIMARY KEY,
    goal_id uuid NOT NULL REFERENCES goal (id),
    version integer NOT NULL,
    changes jsonb NOT NULL,
    changed_by text,
    changed_at timestamptz NOT NULL,
    UNIQUE (goal_id, version)
);
