-- Fair run scheduling reads, per organization with a run waiting, its runs computing now
-- and when its last run started.
CREATE INDEX ix_matching_run_org_started ON matching_run (org_id, started_at);
CREATE INDEX ix_matching_run_org_running ON matching_run (org_id) WHERE status = 'running';

-- Group format: every member's match in one circle carries the circle's id.
ALTER TABLE match ADD COLUMN group_id uuid;
CREATE INDEX ix_match_group ON match (group_id) WHERE group_id IS NOT NULL;
-- Peer format: a peer may be on either side of up to `capacity` pairs, so the one-open-
-- match-per-mentee rule does not hold for peer matches (capacity is checked under locks).
ALTER TABLE match ADD COLUMN peer boolean NOT NULL DEFAULT false;
DROP INDEX uq_match_open_mentee;
CREATE UNIQUE INDEX uq_match_open_mentee ON match (mentee_enrollment_id)
    WHERE status IN ('proposed', 'active') AND NOT peer;
CREATE INDEX ix_match_mentee_open ON match (mentee_enrollment_id)
    WHERE status IN ('proposed', 'active');
