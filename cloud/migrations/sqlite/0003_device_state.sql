-- What the owner set for a device (gate settings) and what the device last
-- reported (status), one row per device, created on the first write.
--
-- Both documents are JSON text written and read by the Rust side
-- (`lastseen_shared::messages`), so a field added there needs no migration.
-- NULL settings mean the defaults; NULL status means never reported.

CREATE TABLE device_state (
    device_id          BLOB    NOT NULL PRIMARY KEY CHECK (length(device_id) = 16)
                               REFERENCES devices (id) ON DELETE CASCADE,
    settings           TEXT,
    status             TEXT,
    -- When the cloud received the status (the device's own clock is in it).
    status_received_at INTEGER
) STRICT, WITHOUT ROWID;
