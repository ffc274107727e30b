-- Each history entry knows when it stopped holding (`next_date`, the next entry's date) and
-- the job level before it (`prev_job_level`), recomputed for the person on every change,
-- so outcome figures need no window over the whole history.
ALTER TABLE person_history ADD COLUMN next_date date;
ALTER TABLE person_history ADD COLUMN prev_job_level integer;
UPDATE person_history AS h SET next_date = w.next_date, prev_job_level = w.prev_level
FROM (
    SELECT person_id, effective_date,
           lead(effective_date) OVER w AS next_date, lag(job_level) OVER w AS prev_level
    FROM person_history
    WINDOW w AS (PARTITION BY person_id ORDER BY effective_date)
) AS w
WHERE h.person_id = w.person_id AND h.effective_date = w.effective_date;
CREATE INDEX ix_person_history_org_date ON person_history (org_id, effective_date);
