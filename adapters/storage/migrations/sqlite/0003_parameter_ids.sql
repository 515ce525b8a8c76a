-- PulseBridge store, schema 3: index rows name their search parameter by a small integer (search_params.pid)
-- instead of the key text (`Observation.code`), which shrinks every index row and both of its indexes.
-- The store registers the keys of every known parameter when it opens (adapters/storage/sql.py ParameterIds);
-- here the keys already used by stored rows get their ids and the rows are carried over.
CREATE TABLE search_params (pid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
INSERT INTO search_params (key)
    SELECT param FROM idx_token UNION SELECT param FROM idx_string UNION SELECT param FROM idx_date
    UNION SELECT param FROM idx_reference UNION SELECT param FROM idx_quantity UNION SELECT param FROM idx_number
    UNION SELECT param FROM idx_uri ORDER BY 1;
CREATE TABLE idx_token_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, system TEXT, code TEXT, text TEXT);
INSERT INTO idx_token_3 SELECT x.rid, p.pid, x.system, x.code, x.text FROM idx_token x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_token;
ALTER TABLE idx_token_3 RENAME TO idx_token;
CREATE INDEX idx_token_value ON idx_token (param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid, param);
CREATE TABLE idx_string_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL);
INSERT INTO idx_string_3 SELECT x.rid, p.pid, x.norm, x.exact FROM idx_string x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_string;
ALTER TABLE idx_string_3 RENAME TO idx_string;
CREATE INDEX idx_string_value ON idx_string (param, norm);
CREATE INDEX idx_string_rid ON idx_string (rid, param);
CREATE TABLE idx_date_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL);
INSERT INTO idx_date_3 SELECT x.rid, p.pid, x.low, x.high FROM idx_date x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_date;
ALTER TABLE idx_date_3 RENAME TO idx_date;
CREATE INDEX idx_date_value ON idx_date (param, low, high);
CREATE INDEX idx_date_rid ON idx_date (rid, param);
CREATE TABLE idx_reference_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, target_type TEXT, target_id TEXT, url TEXT);
INSERT INTO idx_reference_3 SELECT x.rid, p.pid, x.target_type, x.target_id, x.url FROM idx_reference x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_reference;
ALTER TABLE idx_reference_3 RENAME TO idx_reference;
CREATE INDEX idx_reference_value ON idx_reference (param, target_id, target_type);
CREATE INDEX idx_reference_rid ON idx_reference (rid, param);
CREATE TABLE idx_quantity_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
                             system TEXT, code TEXT, unit TEXT);
INSERT INTO idx_quantity_3 SELECT x.rid, p.pid, x.low, x.high, x.system, x.code, x.unit FROM idx_quantity x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_quantity;
ALTER TABLE idx_quantity_3 RENAME TO idx_quantity;
CREATE INDEX idx_quantity_value ON idx_quantity (param, low);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, param);
CREATE TABLE idx_number_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL);
INSERT INTO idx_number_3 SELECT x.rid, p.pid, x.low, x.high FROM idx_number x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_number;
ALTER TABLE idx_number_3 RENAME TO idx_number;
CREATE INDEX idx_number_value ON idx_number (param, low);
CREATE INDEX idx_number_rid ON idx_number (rid, param);
CREATE TABLE idx_uri_3 (rid INTEGER NOT NULL, param INTEGER NOT NULL, value TEXT NOT NULL);
INSERT INTO idx_uri_3 SELECT x.rid, p.pid, x.value FROM idx_uri x JOIN search_params p ON p.key = x.param ORDER BY x.rowid;
DROP TABLE idx_uri;
ALTER TABLE idx_uri_3 RENAME TO idx_uri;
CREATE INDEX idx_uri_value ON idx_uri (param, value);
CREATE INDEX idx_uri_rid ON idx_uri (rid, param);
