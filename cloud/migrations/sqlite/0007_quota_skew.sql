-- Retention by arrival, and frames from a wrong device clock (SQLite flavour).
--
-- Numbered 0007 in both folders (0006 is another change's number).

-- The device's captured_at was further from the server's received_at than
-- `clock_skew_flag_secs` when the frame arrived (e.g. a Pi without a
-- real-time clock that reports 1970 until NTP syncs). Set at ingest; frames
-- stored before this migration read as not flagged.
ALTER TABLE frames ADD COLUMN clock_skewed INTEGER NOT NULL DEFAULT 0
    CHECK (clock_skewed IN (0, 1));

-- Retention walks an owner's frames oldest *received* first: the server's
-- clock, not the device's, decides when a frame is old.
DROP INDEX frames_by_owner_age;
CREATE INDEX frames_by_owner_received ON frames (owner_id, received_at, id);
