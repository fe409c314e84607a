-- Invite codes for `registration = "invite"` (PostgreSQL flavour; same
-- conventions as 0001).
--
-- Numbered 0008 in both folders: 0006 and 0007 are other changes' numbers.
--
-- Only the SHA-256 of a code is kept (64 lowercase hex digits): a copy of the
-- database gives nobody a working code. A code is used at most once
-- (`used_at` is set in the transaction that creates the account) and not
-- after `expires_at`.
CREATE TABLE invites (
    code_hash  text        NOT NULL PRIMARY KEY CHECK (length(code_hash) = 64),
    -- NULL for codes the operator made (`lastseen-cloud invite`). A user's
    -- codes go with their account.
    created_by uuid        REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    -- The account the code made; NULL once that account is deleted.
    used_by    uuid        REFERENCES users (id) ON DELETE SET NULL,
    CHECK (used_by IS NULL OR used_at IS NOT NULL)
);

-- A user's open codes are counted against `max_invites_per_user`; the
-- foreign keys' cascades look rows up by user.
CREATE INDEX invites_by_creator ON invites (created_by, expires_at);
CREATE INDEX invites_by_user ON invites (used_by);
