-- SCIM provisioning view of a person. `scim` holds the representation the identity
-- provider last wrote (attributes with no column of their own: phone numbers, addresses,
-- roles...); the columns stay the source of truth for the attributes they map.
ALTER TABLE person
    ADD COLUMN user_name text,
    ADD COLUMN scim_external_id text,
    ADD COLUMN scim jsonb,
    -- Set by a SCIM DELETE: the person is offboarded and no longer a SCIM resource.
    ADD COLUMN scim_deleted_at timestamptz;
-- userName is case-insensitive (RFC 7643 §4.1.1) and unique within an organization.
CREATE UNIQUE INDEX uq_person_org_id_user_name ON person (org_id, lower(user_name))
    WHERE user_name IS NOT NULL AND scim_deleted_at IS NULL;
CREATE INDEX ix_person_org_id_scim_external_id ON person (org_id, scim_external_id);
CREATE INDEX ix_person_org_id_email ON person (org_id, lower(email));
-- HRIS-synced people start with externalId = their HRIS id.
UPDATE person SET scim_external_id = external_id WHERE scim_external_id IS NULL;

CREATE TABLE program (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization (id),
    name text NOT NULL,
    description text,
    format text NOT NULL,
    status text NOT NULL,
    starts_on date,
    ends_on date,
    max_mentees_per_mentor integer NOT NULL,
    criteria jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_program_org_id ON program (org_id, created_at, id);

CREATE TABLE enrollment (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization (id),
    program_id uuid NOT NULL REFERENCES program (id),
    person_id uuid NOT NULL REFERENCES person (id),
    employee_external_id text NOT NULL,
    role text NOT NULL,
    skills jsonb NOT NULL DEFAULT '[]',
    goals text[] NOT NULL DEFAULT '{}',
    languages text[] NOT NULL DEFAULT '{}',
    capacity integer,
    preferences jsonb NOT NULL DEFAULT '{}',
    bio text,
    status text NOT NULL DEFAULT 'active',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- One active enrollment per person per program; withdrawn ones stay as history.
CREATE UNIQUE INDEX uq_enrollment_program_id_person_id_active ON enrollment (program_id, person_id)
    WHERE status = 'active';
CREATE INDEX ix_enrollment_program_id ON enrollment (program_id, created_at, id);
CREATE INDEX ix_enrollment_person_id ON enrollment (person_id) WHERE status = 'active';

-- SCIM groups and their members (people or other groups).
CREATE TABLE scim_group (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization (id),
    display_name text NOT NULL,
    external_id text,
    scim jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_scim_group_org_id ON scim_group (org_id, created_at, id);

CREATE TABLE scim_group_member (
    group_id uuid NOT NULL REFERENCES scim_group (id) ON DELETE CASCADE,
    member_id uuid NOT NULL,
    member_type text NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX ix_scim_group_member_member_id ON scim_group_member (member_id);
