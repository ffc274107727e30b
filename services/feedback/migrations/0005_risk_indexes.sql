-- At-risk at 10,000 matches: the latest held session of a match or circle by index, and
-- each match's answers kept as running totals (adjusted with every answer and edit, like
-- the daily rollups) instead of averaging its answers on every request.
CREATE INDEX ix_session_occurrence_group
    ON session_occurrence (group_id, held_at) WHERE status = 'completed' AND group_id IS NOT NULL;

CREATE TABLE match_feedback (
    match_id uuid PRIMARY KEY,
    ratings integer NOT NULL DEFAULT 0,
    rating_sum integer NOT NULL DEFAULT 0
);

INSERT INTO match_feedback
SELECT match_id, count(*), sum(rating) FROM feedback WHERE match_id IS NOT NULL GROUP BY 1;
