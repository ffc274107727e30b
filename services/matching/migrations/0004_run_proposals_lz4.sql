-- A large run stores tens of megabytes of proposals (with explanations) in one value: LZ4
-- compresses them several times faster than the default pglz, at about the same size.
-- Only new values are compressed this way; a server built without LZ4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE matching_run ALTER COLUMN proposals SET COMPRESSION lz4;
    ALTER TABLE matching_run ALTER COLUMN unmatched SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 compression is not available; proposals keep the default compression';
END
$$;
