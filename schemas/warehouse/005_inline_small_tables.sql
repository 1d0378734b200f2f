-- Small inserts into the bookkeeping tables live in the catalog, not in a Parquet file each.
-- The loader appends to offsets_ledger and load_batch on every batch and to the dimensions on
-- every batch with new keys, and it reads the ledger and the dimensions on every batch: with one
-- file per insert, each batch read a file more than the last (on GCS a few requests each). An
-- insert of up to 1,000 rows is inlined; larger ones (a backlog's first accounts) still go to
-- Parquet. transaction_fact keeps DuckLake's lake-wide setting (0: always Parquet).
CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'offsets_ledger');
CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'load_batch');
CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'time_dimension');
CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'account_dimension');
CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'transaction_duplicate');
CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'summary_refresh');
