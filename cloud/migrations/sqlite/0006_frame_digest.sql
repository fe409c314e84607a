-- Frame identity (SQLite flavour; same conventions as 0001).
--
-- Numbered 0006 in both folders. A `(device, seq)` sent again is a resend
-- only if it is the same frame: the same captured_at and the same image.
-- The SHA-256 of the JPEG as the device sent it (not of an image shared
-- with an earlier frame); NULL for frames stored before this migration,
-- which compare on captured_at alone.
ALTER TABLE frames ADD COLUMN image_sha256 BLOB CHECK (length(image_sha256) = 32);
