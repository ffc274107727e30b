-- Sentence embeddings of an enrollment's goals (float16, 384 per goal, in goal order),
-- computed when its event arrives; NULL when every goal names a known skill in words.
ALTER TABLE enrollment ADD COLUMN goal_vectors bytea;
