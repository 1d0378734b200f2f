-- When each loaded event entered raw (the raw record's Kafka timestamp, carried by the validator),
-- so the reconciliation in = fact + duplicates + error can be checked per arrival day.
ALTER TABLE transaction_fact ADD COLUMN ingested_at TIMESTAMPTZ;
ALTER TABLE transaction_duplicate ADD COLUMN ingested_at TIMESTAMPTZ;
