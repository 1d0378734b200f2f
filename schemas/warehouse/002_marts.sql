-- Analysts' layer: marts beside the daily summary, and views that read one row per dimension key.
-- The summarizer refreshes every mart for the days a load touched (services/summarizer/core.py);
-- nothing here is rebuilt in full. Applied once by headrace.lake.warehouse.migrate() (USE lake).

-- The daily summary gains its date, so BI tools get a temporal column without assembling one.
ALTER TABLE transaction_daily_summary ADD COLUMN date DATE;
UPDATE transaction_daily_summary SET date = make_date(year, month, day);

-- Daily breakdown by status and account type.
CREATE TABLE IF NOT EXISTS daily_status_account_summary (
    time_id                 INTEGER  NOT NULL,
    date                    DATE     NOT NULL,
    status                  VARCHAR  NOT NULL,
    account_type            VARCHAR  NOT NULL,
    txn_count               BIGINT   NOT NULL,
    total_amount            DOUBLE   NOT NULL,
    avg_processing_duration DOUBLE
);

-- Hourly volume by region for the most recent days that have data (the window ends on the newest
-- event day, so a replay of old files still shows its last days; older hours are dropped).
CREATE TABLE IF NOT EXISTS hourly_volume (
    time_id         INTEGER     NOT NULL,
    hour            TIMESTAMPTZ NOT NULL,  -- start of the UTC hour
    customer_region VARCHAR     NOT NULL,
    txn_count       BIGINT      NOT NULL,
    total_amount    DOUBLE      NOT NULL
);

-- How current each day is: its newest event and the last load that added rows to it.
CREATE TABLE IF NOT EXISTS data_freshness (
    time_id           INTEGER     NOT NULL,
    date              DATE        NOT NULL,
    txn_count         BIGINT      NOT NULL,
    newest_event_time TIMESTAMPTZ NOT NULL,
    last_load_time    TIMESTAMPTZ NOT NULL,
    refreshed_at      TIMESTAMPTZ NOT NULL
);

-- Two loader replicas can insert the same new dimension key at once (each checks before the
-- other commits). These views read one row per key, so a join through them never doubles a fact.
CREATE OR REPLACE VIEW calendar_view AS
SELECT time_id,
       any_value(date)                      AS date,
       any_value(year)                      AS year,
       any_value(quarter)                   AS quarter,
       any_value(month)                     AS month,
       monthname(any_value(date))           AS month_name,
       any_value(day)                       AS day,
       dayofyear(any_value(date))           AS day_of_year,
       weekofyear(any_value(date))          AS iso_week,
       any_value(weekday)                   AS weekday,
       dayname(any_value(date))             AS day_name,
       any_value(is_weekend)                AS is_weekend
FROM time_dimension
GROUP BY time_id;

CREATE OR REPLACE VIEW account_view AS
SELECT account_id,
       any_value(masked_account_number) AS masked_account_number,
       any_value(account_type)          AS account_type,
       any_value(customer_region)       AS customer_region
FROM account_dimension
GROUP BY account_id;

-- The flattened fact: readable columns only, no surrogate keys.
CREATE OR REPLACE VIEW transaction_view AS
SELECT
    f.transaction_id,
    f.event_time,
    t.date                  AS event_date,
    t.year, t.quarter, t.month, t.month_name, t.day, t.weekday, t.day_name, t.is_weekend,
    f.amount,
    f.processing_duration,
    f.status,
    f.source_system,
    a.masked_account_number AS account_number,
    a.account_type,
    a.customer_region,
    f.load_timestamp,
    f.batch_id              AS load_batch_id
FROM transaction_fact f
JOIN calendar_view t USING (time_id)
JOIN account_view a USING (account_id);

-- Build the new marts for data loaded before this migration: the summarizer refreshes the days of
-- every batch missing from summary_refresh, so forgetting them makes its next refresh cover them.
DELETE FROM summary_refresh;
