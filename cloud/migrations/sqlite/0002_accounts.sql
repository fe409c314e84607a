-- Account and device hardening: token cut-offs, device kinds, revocation.
--
-- Same conventions as 0001 (16-byte BLOB ids, INTEGER microseconds UTC).
-- ADD COLUMN ... NOT NULL needs a constant default; the UPDATEs below then
-- give existing rows their real starting values. New rows always get every
-- column from the store, so the defaults only ever serve this migration.

-- User tokens issued before this instant are void. Starts at created_at.
ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER NOT NULL DEFAULT 0;
UPDATE users SET tokens_valid_after = created_at;

-- Every device before this migration was a camera.
ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'camera';
-- Device tokens issued before this instant are void (rotation). Starts at created_at.
ALTER TABLE devices ADD COLUMN tokens_valid_after INTEGER NOT NULL DEFAULT 0;
-- NULL while the device may send; set once, never cleared.
ALTER TABLE devices ADD COLUMN revoked_at INTEGER;
UPDATE devices SET tokens_valid_after = created_at;

-- Single logged-out tokens, kept until they would have expired anyway. Not
-- tied to a user: a deleted user's entries simply expire.
CREATE TABLE revoked_tokens (
    jti        BLOB    NOT NULL PRIMARY KEY CHECK (length(jti) = 16),
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The purge: everything that expired before now.
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
