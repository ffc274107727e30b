-- Daily rollups the analytics read instead of scanning every answer and occurrence (a
-- 400,000-answer program aggregated from its rows took ~600 ms here; from these, ~1 ms).
-- Answers are ours: submit and edit adjust `feedback_daily` in their own transaction.
-- Occurrence outcomes come from events: the consumer moves an occurrence's count from its
-- old (day, status) to its new one only when a newer version changes it, so redelivered
-- and reordered events leave the same counts. Days are UTC.
CREATE TABLE feedback_daily (
    program_id uuid NOT NULL,
    day date NOT NULL,
    role text NOT NULL,
    ratings integer NOT NULL DEFAULT 0,
    rating_sum integer NOT NULL DEFAULT 0,
    promoters integer NOT NULL DEFAULT 0,
    passives integer NOT NULL DEFAULT 0,
    detractors integer NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, day, role)
);

CREATE TABLE session_daily (
    program_id uuid NOT NULL,
    day date NOT NULL,
    status text NOT NULL,
    occurrences integer NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, day, status)
);

INSERT INTO feedback_daily
SELECT program_id, (created_at AT TIME ZONE 'UTC')::date, coalesce(role, ''), count(*),
       sum(rating), count(*) FILTER (WHERE nps >= 9),
       count(*) FILTER (WHERE nps BETWEEN 7 AND 8), count(*) FILTER (WHERE nps <= 6)
FROM feedback WHERE program_id IS NOT NULL GROUP BY 1, 2, 3;

INSERT INTO session_daily
SELECT program_id, (held_at AT TIME ZONE 'UTC')::date, status, count(*)
FROM session_occurrence WHERE program_id IS NOT NULL GROUP BY 1, 2, 3;
