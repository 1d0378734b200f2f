-- The fact table's partition key is the loader's time bucket, no longer the day (time_id): the
-- day of the event for a batch of a few days, and a coarser period (month, year, decade, ...)
-- for a batch whose events span more days than a batch may write files (a backfill of years).
-- Every loader batch thus writes a bounded number of files, and DuckDB's partitioned write,
-- which holds a buffer per open partition, a bounded amount of memory (docs/architecture.md).
-- Rows loaded before keep their day partitions; queries prune on event_time and time_id
-- through the files' column statistics either way.
ALTER TABLE transaction_fact ADD COLUMN time_bucket INTEGER;
