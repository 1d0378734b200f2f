-- A table's partitioning cannot change in the transaction that adds the column (008).
ALTER TABLE transaction_fact SET PARTITIONED BY (time_bucket);
