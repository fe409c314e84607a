-- lastseen metadata, SQLite flavour.
--
-- Conventions (the Rust side relies on them):
-- * ids are 16-byte BLOBs (sqlx's Uuid encoding);
-- * timestamps are INTEGER microseconds since the Unix epoch, UTC, so ordering
--   and range predicates are plain integer comparisons;
-- * unsigned Rust counters (seq, bytes, width, height) are INTEGER >= 0.
-- STRICT makes SQLite reject a value of the wrong storage class instead of
-- silently coercing it.

CREATE TABLE users (
    id            BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    owner_id   BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    -- Target of the composite foreign keys below: a frame or sighting can only
    -- name the owner that really owns its device.
    UNIQUE (id, owner_id)
) STRICT;

-- devices_of: the owner's devices, oldest first.
CREATE INDEX devices_by_owner ON devices (owner_id, created_at, id);

CREATE TABLE frames (
    id          BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    device_id   BLOB    NOT NULL,
    owner_id    BLOB    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    captured_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    blob_key    TEXT    NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    width       INTEGER NOT NULL CHECK (width >= 0),
    height      INTEGER NOT NULL CHECK (height >= 0),
    -- What makes ingest idempotent; also serves the frame_by_seq lookup and
    -- the device foreign key.
    UNIQUE (device_id, seq),
    FOREIGN KEY (device_id, owner_id) REFERENCES devices (id, owner_id) ON DELETE CASCADE
) STRICT;

-- owner_id, device_id and captured_at repeat the frame's so that every listing
-- is answered by walking one index, newest first, without a join or a sort.
-- AUTOINCREMENT: ids are never reused, so a (captured_at, id) cursor held by a
-- client can never land on a different row later.
CREATE TABLE detections (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    frame_id    BLOB    NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    device_id   BLOB    NOT NULL,
    owner_id    BLOB    NOT NULL,
    label       TEXT    NOT NULL,
    score       REAL    NOT NULL,
    x1          REAL    NOT NULL,
    y1          REAL    NOT NULL,
    x2          REAL    NOT NULL,
    y2          REAL    NOT NULL,
    captured_at INTEGER NOT NULL
) STRICT;

-- A frame's detections (reads and the cascade from frames).
CREATE INDEX detections_by_frame ON detections (frame_id);
-- Listings: by label, over everything, and per device.
CREATE INDEX detections_by_owner_label ON detections (owner_id, label, captured_at DESC, id DESC);
CREATE INDEX detections_by_owner ON detections (owner_id, captured_at DESC, id DESC);
CREATE INDEX detections_by_device ON detections (device_id, captured_at DESC, id DESC);

-- The newest sighting of each label on each device, maintained on ingest and
-- only ever moved forward in captured_at. Deleting a frame (retention) deletes
-- the sightings that point at it: what retention forgets, "last seen" forgets.
CREATE TABLE last_seen (
    device_id   BLOB    NOT NULL,
    label       TEXT    NOT NULL,
    owner_id    BLOB    NOT NULL,
    frame_id    BLOB    NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    captured_at INTEGER NOT NULL,
    score       REAL    NOT NULL,
    x1          REAL    NOT NULL,
    y1          REAL    NOT NULL,
    x2          REAL    NOT NULL,
    y2          REAL    NOT NULL,
    PRIMARY KEY (device_id, label),
    FOREIGN KEY (device_id, owner_id) REFERENCES devices (id, owner_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- "Where is my cup": one seek per label across the owner's devices. The
-- trailing columns are the tie-breaks of the queries, so they never sort.
CREATE INDEX last_seen_by_owner_label
    ON last_seen (owner_id, label, captured_at DESC, score DESC, device_id);
-- The cascade from frames.
CREATE INDEX last_seen_by_frame ON last_seen (frame_id);
