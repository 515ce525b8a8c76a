-- PulseBridge store, SQLite schema 1: versions, current resources, search index per parameter type.
-- Instants are UTC microseconds since 1970 (adapters/storage/dates.py); JSON is orjson bytes.
CREATE TABLE resources (
    rid INTEGER PRIMARY KEY,
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version_id INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (resource_type, id)
);
CREATE TABLE versions (
    vid INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL,
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version_id INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method TEXT NOT NULL,
    resource BLOB,
    UNIQUE (rid, version_id)
);
CREATE INDEX versions_by_type ON versions (resource_type, vid);
CREATE TABLE idx_token (rid INTEGER NOT NULL, param TEXT NOT NULL, system TEXT, code TEXT, text TEXT);
CREATE INDEX idx_token_value ON idx_token (param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid, param);
CREATE TABLE idx_string (rid INTEGER NOT NULL, param TEXT NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX idx_string_value ON idx_string (param, norm);
CREATE INDEX idx_string_rid ON idx_string (rid, param);
CREATE TABLE idx_date (rid INTEGER NOT NULL, param TEXT NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL);
CREATE INDEX idx_date_value ON idx_date (param, low, high);
CREATE INDEX idx_date_rid ON idx_date (rid, param);
CREATE TABLE idx_reference (rid INTEGER NOT NULL, param TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT);
CREATE INDEX idx_reference_value ON idx_reference (param, target_id, target_type);
CREATE INDEX idx_reference_rid ON idx_reference (rid, param);
CREATE TABLE idx_quantity (rid INTEGER NOT NULL, param TEXT NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
                           system TEXT, code TEXT, unit TEXT);
CREATE INDEX idx_quantity_value ON idx_quantity (param, low);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, param);
CREATE TABLE idx_number (rid INTEGER NOT NULL, param TEXT NOT NULL, low REAL NOT NULL, high REAL NOT NULL);
CREATE INDEX idx_number_value ON idx_number (param, low);
CREATE INDEX idx_number_rid ON idx_number (rid, param);
CREATE TABLE idx_uri (rid INTEGER NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX idx_uri_value ON idx_uri (param, value);
CREATE INDEX idx_uri_rid ON idx_uri (rid, param);
