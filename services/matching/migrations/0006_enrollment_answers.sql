-- Answers to a program's intake questions, which criteria may weigh (`answers.<key>`).
ALTER TABLE enrollment ADD COLUMN answers jsonb NOT NULL DEFAULT '{}';
