-- What the owner set for a device (gate settings) and what the device last
-- reported (status), one row per device, created on the first write.
--
-- Both documents are JSON text written and read by the Rust side
-- (`lastseen_shared::messages`), so a field added there needs no migration;
-- `text` rather than `jsonb` keeps them byte for byte as on SQLite.
-- NULL settings mean the defaults; NULL status means never reported.

CREATE TABLE device_state (
    device_id          uuid        NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    settings           text,
    status             text,
    -- When the cloud received the status (the device's own clock is in it).
    status_received_at timestamptz
);
