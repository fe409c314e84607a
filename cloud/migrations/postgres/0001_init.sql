-- lastseen metadata, PostgreSQL flavour: the logical schema of
-- migrations/sqlite (0001 + 0002) with native types.
--
-- Conventions (the Rust side relies on them):
-- * ids are `uuid`; `detections.id` is an identity `bigint`;
-- * timestamps are `timestamptz` (microseconds, UTC, like the SQLite integers);
-- * unsigned Rust counters (seq, bytes, width, height) are `bigint` with a
--   CHECK on their range, since Postgres has no unsigned types;
-- * scores and box corners are `real` (the `f32` of the domain, bit for bit);
-- * labels compare byte by byte (`COLLATE "C"`), as in SQLite, whatever the
--   database's locale: tie-breaks on label order the same on both backends.
-- Constraint and index names are relied on: `users_username_key` tells a taken
-- username apart, and the plan tests name the indexes.

CREATE TABLE users (
    id                 uuid        NOT NULL PRIMARY KEY,
    username           text        NOT NULL,
    password_hash      text        NOT NULL,
    created_at         timestamptz NOT NULL,
    -- User tokens issued before this instant are void. Starts at created_at.
    tokens_valid_after timestamptz NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE devices (
    id                 uuid        NOT NULL PRIMARY KEY,
    owner_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               text        NOT NULL,
    kind               text        NOT NULL,
    created_at         timestamptz NOT NULL,
    -- Device tokens issued before this instant are void (rotation).
    tokens_valid_after timestamptz NOT NULL,
    -- NULL while the device may send; set once, never cleared.
    revoked_at         timestamptz,
    -- Target of the composite foreign keys below: a frame or sighting can only
    -- name the owner that really owns its device.
    CONSTRAINT devices_id_owner_key UNIQUE (id, owner_id)
);

-- devices_of (oldest first) and the cascade from users.
CREATE INDEX devices_by_owner ON devices (owner_id, created_at, id);

CREATE TABLE frames (
    id          uuid        NOT NULL PRIMARY KEY,
    device_id   uuid        NOT NULL,
    owner_id    uuid        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 0),
    captured_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    blob_key    text        NOT NULL,
    bytes       bigint      NOT NULL CHECK (bytes >= 0),
    width       bigint      NOT NULL CHECK (width BETWEEN 0 AND 4294967295),
    height      bigint      NOT NULL CHECK (height BETWEEN 0 AND 4294967295),
    -- What makes ingest idempotent; also serves frame_by_seq, the cascade
    -- from devices and, with blob_key carried in the index, the blob-key reads
    -- of account and device deletion (index-only where the heap allows).
    CONSTRAINT frames_device_seq_key UNIQUE (device_id, seq) INCLUDE (blob_key),
    CONSTRAINT frames_device_owner_fkey FOREIGN KEY (device_id, owner_id)
        REFERENCES devices (id, owner_id) ON DELETE CASCADE
);

-- owner_id, device_id and captured_at repeat the frame's so that every listing
-- is answered by walking one index, newest first, without a join or a sort.
-- An identity never hands out an id twice, so a (captured_at, id) cursor held
-- by a client can never land on a different row later.
CREATE TABLE detections (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    frame_id    uuid        NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    device_id   uuid        NOT NULL,
    owner_id    uuid        NOT NULL,
    label       text        COLLATE "C" NOT NULL,
    score       real        NOT NULL,
    x1          real        NOT NULL,
    y1          real        NOT NULL,
    x2          real        NOT NULL,
    y2          real        NOT NULL,
    captured_at timestamptz NOT NULL
);

-- A frame's detections (reads and the cascade from frames).
CREATE INDEX detections_by_frame ON detections (frame_id);
-- Listings: by label, over everything, and per device.
CREATE INDEX detections_by_owner_label ON detections (owner_id, label, captured_at DESC, id DESC);
CREATE INDEX detections_by_owner ON detections (owner_id, captured_at DESC, id DESC);
CREATE INDEX detections_by_device ON detections (device_id, captured_at DESC, id DESC);
-- A device belongs to one owner. Without this the planner takes the owner and
-- device filters of a device listing as independent, expects a handful of
-- rows, and reads them all to sort them instead of walking
-- detections_by_device and stopping after one page.
CREATE STATISTICS detections_device_owner (dependencies) ON device_id, owner_id FROM detections;

-- The newest sighting of each label on each device, maintained on ingest and
-- only ever moved forward in captured_at. Deleting a frame (retention) deletes
-- the sightings that point at it: what retention forgets, "last seen" forgets.
CREATE TABLE last_seen (
    device_id   uuid        NOT NULL,
    label       text        COLLATE "C" NOT NULL,
    owner_id    uuid        NOT NULL,
    frame_id    uuid        NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    captured_at timestamptz NOT NULL,
    score       real        NOT NULL,
    x1          real        NOT NULL,
    y1          real        NOT NULL,
    x2          real        NOT NULL,
    y2          real        NOT NULL,
    PRIMARY KEY (device_id, label),
    CONSTRAINT last_seen_device_owner_fkey FOREIGN KEY (device_id, owner_id)
        REFERENCES devices (id, owner_id) ON DELETE CASCADE
);

-- "Where is my cup": one seek per label across the owner's devices. The
-- trailing columns are the tie-breaks of the queries, so they never sort.
CREATE INDEX last_seen_by_owner_label
    ON last_seen (owner_id, label, captured_at DESC, score DESC, device_id);
-- The cascade from frames.
CREATE INDEX last_seen_by_frame ON last_seen (frame_id);

-- Single logged-out tokens, kept until they would have expired anyway. Not
-- tied to a user: a deleted user's entries simply expire.
CREATE TABLE revoked_tokens (
    jti        uuid        NOT NULL PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- The purge: everything that expired before now.
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
