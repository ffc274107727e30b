-- Learning tracks: a program's tracks, every version of their modules (matches keep the
-- version they started on), each match's assigned track and who completed which step.
CREATE TABLE track (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    name text NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    version integer NOT NULL,
    modules jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_track_program ON track (org_id, program_id, created_at);

CREATE TABLE track_version (
    track_id uuid NOT NULL REFERENCES track (id),
    version integer NOT NULL,
    modules jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_track_version PRIMARY KEY (track_id, version)
);

CREATE TABLE match_track (
    match_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    track_id uuid NOT NULL REFERENCES track (id),
    version integer NOT NULL,
    started_on date NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX ix_match_track_program ON match_track (org_id, program_id);

CREATE TABLE step_completion (
    match_id uuid NOT NULL REFERENCES match_track (match_id),
    step_id text NOT NULL,
    role text NOT NULL,
    employee_external_id text NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_step_completion PRIMARY KEY (match_id, step_id, role)
);

-- Mentoring agreements: a program's template, and each active match's agreement with the
-- signatures of its current text version.
CREATE TABLE agreement_template (
    program_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    terms jsonb NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agreement (
    match_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    program_id uuid NOT NULL,
    terms jsonb NOT NULL,
    text text NOT NULL,
    version integer NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    signed_at timestamptz
);
CREATE INDEX ix_agreement_program ON agreement (org_id, program_id);

CREATE TABLE agreement_signature (
    match_id uuid NOT NULL REFERENCES agreement (match_id),
    employee_external_id text NOT NULL,
    version integer NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_agreement_signature PRIMARY KEY (match_id, employee_external_id)
);
