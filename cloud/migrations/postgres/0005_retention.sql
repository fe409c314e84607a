-- Retention and shared images (PostgreSQL flavour; same conventions as 0001).
--
-- Numbered 0005 in both folders: 0002 is taken in migrations/sqlite
-- (accounts), and 0003 and 0004 are other changes' numbers, so the two
-- backends keep one name for it.

-- A user's own limits, replacing the configured defaults while the row
-- exists. NULL in a column means "no limit" for that user.
CREATE TABLE retention_overrides (
    user_id      uuid   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    max_age_days bigint CHECK (max_age_days BETWEEN 1 AND 4294967295),
    max_bytes    bigint CHECK (max_bytes >= 1)
);

-- Retention walks an owner's frames oldest first and stops after one batch;
-- blob_key and bytes ride along so the walk and the byte total need no heap
-- reads where the visibility map allows.
CREATE INDEX frames_by_owner_age ON frames (owner_id, captured_at, id) INCLUDE (blob_key, bytes);

-- A frame whose scene did not change points at an earlier frame's image, so
-- one blob may have several frames. Before an image is deleted, its other
-- frames are looked up here; the first frame of an image is the one with
-- the lowest seq (the one that stored it).
CREATE INDEX frames_by_blob_key ON frames (blob_key, seq);
