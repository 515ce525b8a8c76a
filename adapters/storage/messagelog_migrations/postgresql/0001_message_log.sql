-- Inbound message log: every message received, before anything is applied or acknowledged.
CREATE TABLE IF NOT EXISTS message_log (
    id BIGSERIAL PRIMARY KEY,
    received_at TEXT NOT NULL,
    peer TEXT NOT NULL,
    transport TEXT NOT NULL,
    sending_application TEXT NOT NULL DEFAULT '',
    sending_facility TEXT NOT NULL DEFAULT '',
    control_id TEXT NOT NULL DEFAULT '',
    message_type TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL DEFAULT '',
    raw BYTEA NOT NULL,
    status TEXT NOT NULL,
    ack_code TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    duplicate_of BIGINT,
    processed_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS message_log_sender ON message_log (sending_application, sending_facility, control_id);
CREATE INDEX IF NOT EXISTS message_log_status ON message_log (status, id);
-- Source event time (EVN-2, else MSH-7) of the newest message applied to a resource.
CREATE TABLE IF NOT EXISTS source_clock (
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    event_micros BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    PRIMARY KEY (resource_type, id)
);
