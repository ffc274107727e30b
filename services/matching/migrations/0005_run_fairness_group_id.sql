-- Fair run scheduling reads, per organization with a run waiting, its runs computing now
-- and when its last run started.
CREATE INDEX ix_matching_run_org_started ON matching_run (org_id, started_at);
CREATE INDEX ix_matching_run_org_running ON matching_run (org_id) WHERE status = 'running';
