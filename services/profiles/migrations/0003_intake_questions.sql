-- Intake questions: a program asks them, its enrollments answer them.
ALTER TABLE program ADD COLUMN questions jsonb NOT NULL DEFAULT '[]';
ALTER TABLE enrollment ADD COLUMN answers jsonb NOT NULL DEFAULT '{}';
