-- PulseBridge store, schema 2: _lastUpdated is answered from resources.last_updated (adapters/storage/plan.py
-- LastUpdatedMatch), so its index rows go; the column gets the index those rows used to provide.
DELETE FROM idx_date WHERE param LIKE '%._lastUpdated';
CREATE INDEX resources_by_last_updated ON resources (resource_type, last_updated);
