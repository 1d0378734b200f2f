-- Data files are written as Parquet format version 2 (DuckDB's V2: data pages v2 with delta and
-- byte-stream-split encodings). On the fact table's rows it takes 26-40% less space than
-- version 1, writes no slower and scans 20-27% faster (`python -m bench.parquet_versions`,
-- docs/performance.md). DuckDB and pyarrow read it (checked); other readers need the v2
-- encodings (byte-stream-split: parquet-mr 1.12+, so Spark 3.2+). Files already written stay
-- as they are: readers take both.
CALL lake.set_option('parquet_version', 2);
