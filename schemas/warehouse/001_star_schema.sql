-- Star schema of the warehouse, as DuckLake tables. Applied once by
-- headrace.lake.warehouse.migrate(); the statements run inside the lake catalog (USE lake), so
-- names are unqualified.

-- One row per event day. time_id = yyyymmdd, so it is the same on every loader replica.
CREATE TABLE IF NOT EXISTS time_dimension (
    time_id    INTEGER NOT NULL,
    date       DATE    NOT NULL,
    year       SMALLINT NOT NULL,
    quarter    TINYINT NOT NULL,
    month      TINYINT NOT NULL,
    day        TINYINT NOT NULL,
    weekday    TINYINT NOT NULL,  -- ISO: 1 = Monday .. 7 = Sunday
    is_weekend BOOLEAN NOT NULL
);

-- One row per account. account_id is a keyed hash of the full account number (stable across
-- restarts and replicas); only the masked number is stored.
CREATE TABLE IF NOT EXISTS account_dimension (
    account_id            BIGINT  NOT NULL,
    masked_account_number VARCHAR NOT NULL,
    account_type          VARCHAR NOT NULL,
    customer_region       VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS transaction_fact (
    transaction_id      BIGINT    NOT NULL,
    amount              DOUBLE    NOT NULL,
    processing_duration DOUBLE,
    status              VARCHAR   NOT NULL,
    source_system       VARCHAR   NOT NULL,
    load_timestamp      TIMESTAMPTZ NOT NULL,
    time_id             INTEGER   NOT NULL,
    account_id          BIGINT    NOT NULL,
    -- lineage: where the event came from and which micro-batch loaded it
    event_time          TIMESTAMPTZ NOT NULL,
    batch_id            VARCHAR   NOT NULL,
    source_topic        VARCHAR   NOT NULL,
    source_partition    INTEGER   NOT NULL,
    source_offset       BIGINT    NOT NULL
);
ALTER TABLE transaction_fact SET PARTITIONED BY (time_id);

-- Validated events not loaded because their transaction_id was already in the fact table
-- (first one wins). Written in the same transaction as the batch, so they are counted exactly once.
CREATE TABLE IF NOT EXISTS transaction_duplicate (
    transaction_id   BIGINT  NOT NULL,
    batch_id         VARCHAR NOT NULL,
    source_topic     VARCHAR NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset    BIGINT  NOT NULL
);

-- The loader's exactly-once ledger: next offset to consume per partition, appended in the same
-- transaction as the data it covers. On assignment a loader seeks to max(next_offset).
CREATE TABLE IF NOT EXISTS offsets_ledger (
    consumer_group VARCHAR NOT NULL,
    topic          VARCHAR NOT NULL,
    "partition"    INTEGER NOT NULL,
    next_offset    BIGINT  NOT NULL,
    batch_id       VARCHAR NOT NULL
);

-- One row per committed micro-batch (lineage). Its data files are the clean-zone files of the
-- DuckLake snapshot whose commit message is the batch id: the loader sets it with
-- set_commit_message, and ducklake_data_file joined to ducklake_snapshot_changes on
-- begin_snapshot = snapshot_id, where commit_message = batch_id, lists them (in the lake's
-- __ducklake_metadata_lake schema; services/loader/runner.py batch_files).
CREATE TABLE IF NOT EXISTS load_batch (
    batch_id        VARCHAR     NOT NULL,
    loader_instance VARCHAR     NOT NULL,
    ranges          VARCHAR     NOT NULL,  -- JSON: [{topic, partition, first_offset, last_offset}]
    fact_rows       BIGINT      NOT NULL,
    duplicate_rows  BIGINT      NOT NULL,
    days            INTEGER[]   NOT NULL,
    committed_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS transaction_daily_summary (
    year                    SMALLINT NOT NULL,
    month                   TINYINT  NOT NULL,
    day                     TINYINT  NOT NULL,
    customer_region         VARCHAR  NOT NULL,
    txn_count               BIGINT   NOT NULL,
    total_amount            DOUBLE   NOT NULL,
    avg_processing_duration DOUBLE
);

-- Batches whose days the summarizer has refreshed; lets it catch up on a lost manifest.
CREATE TABLE IF NOT EXISTS summary_refresh (
    batch_id     VARCHAR     NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL
);

CREATE OR REPLACE VIEW transaction_view AS
SELECT
    f.transaction_id,
    f.event_time,
    t.date                  AS event_date,
    t.year, t.quarter, t.month, t.day, t.weekday, t.is_weekend,
    f.amount,
    f.processing_duration,
    f.status,
    f.source_system,
    a.masked_account_number AS account_number,
    a.account_type,
    a.customer_region,
    f.load_timestamp
FROM transaction_fact f
JOIN time_dimension t USING (time_id)
JOIN account_dimension a USING (account_id);
