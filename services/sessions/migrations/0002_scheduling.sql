-- Scheduling: the match projection, availability, sessions with their occurrences, the
-- per-participant busy ranges PostgreSQL keeps free of overlaps, reminders, calendar feeds.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Sessions' projection of matches (from `match.*`): who is in a match, and whether it is live.
CREATE TABLE match (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    group_id uuid,
    mentor_person_id uuid,
    mentee_person_id uuid,
    mentor_external_id text,
    mentee_external_id text,
    status text NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_match_org_id_group_id ON match (org_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX ix_match_org_id_mentee ON match (org_id, mentee_external_id);
CREATE INDEX ix_match_org_id_mentor ON match (org_id, mentor_external_id);

-- One person's weekly windows (in their own zone) and date exceptions.
CREATE TABLE availability (
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    time_zone text NOT NULL,
    weekly jsonb NOT NULL,
    exceptions jsonb NOT NULL,
    version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, external_id)
);

-- A one-off session or a series (rrule expanded in `time_zone`).
CREATE TABLE session (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    match_id uuid,
    group_id uuid,
    program_id uuid,
    starts_at timestamptz NOT NULL,
    duration_minutes integer NOT NULL,
    time_zone text NOT NULL,
    rrule text,
    title text,
    agenda text,
    location text,
    video_url text,
    status text NOT NULL,
    reason text,
    -- The series this one was split from by a "this and following" change.
    split_from uuid,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_session_org_id_created_at ON session (org_id, created_at, id);
CREATE INDEX ix_session_match_id ON session (match_id);
CREATE INDEX ix_session_group_id ON session (group_id);

CREATE TABLE session_participant (
    session_id uuid NOT NULL REFERENCES session (id) ON DELETE CASCADE,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    person_id uuid,
    role text NOT NULL,
    -- A circle member who left (match ended, offboarded) stays listed but inactive.
    active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (session_id, external_id)
);
CREATE INDEX ix_session_participant_person ON session_participant (org_id, external_id);

-- Each occurrence of a session, materialized (a one-off session has exactly one).
-- `original_starts_at` names it for good; `starts_at` moves when it is rescheduled.
CREATE TABLE occurrence (
    id bigserial PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES session (id) ON DELETE CASCADE,
    org_id uuid NOT NULL,
    original_starts_at timestamptz NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL,
    reason text,
    version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_occurrence_session_id_original UNIQUE (session_id, original_starts_at)
);
CREATE INDEX ix_occurrence_scheduled ON occurrence (org_id, starts_at) WHERE status = 'scheduled';

-- The time each participant is taken by an occurrence that still holds it (scheduled or
-- held). PostgreSQL refuses two overlapping ranges of one person: concurrent bookings
-- of the same time cannot both commit.
CREATE TABLE busy (
    occurrence_id bigint NOT NULL REFERENCES occurrence (id) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    during tstzrange NOT NULL,
    PRIMARY KEY (occurrence_id, external_id),
    CONSTRAINT ex_busy_person_during EXCLUDE USING gist (
        org_id WITH =, external_id WITH =, during WITH &&
    )
);

-- One row per occurrence and lead time; `sent_at` set in the transaction that writes the
-- `session.reminder_due` outbox row, so each reminder goes out once.
CREATE TABLE reminder (
    id bigserial PRIMARY KEY,
    occurrence_id bigint NOT NULL REFERENCES occurrence (id) ON DELETE CASCADE,
    org_id uuid NOT NULL,
    lead_minutes integer NOT NULL,
    due_at timestamptz NOT NULL,
    sent_at timestamptz,
    CONSTRAINT uq_reminder_occurrence_id_lead UNIQUE (occurrence_id, lead_minutes)
);
CREATE INDEX ix_reminder_due ON reminder (due_at) WHERE sent_at IS NULL;

-- Secret calendar links: only the token's hash is kept.
CREATE TABLE calendar_feed (
    token_hash bytea PRIMARY KEY,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX ix_calendar_feed_person ON calendar_feed (org_id, external_id);
