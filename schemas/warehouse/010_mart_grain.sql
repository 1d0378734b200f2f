-- The fact rows at the finest grain any mart needs, kept by the summarizer in the warehouse
-- (services/summarizer/grain.py): per day, UTC hour, region, account type and status, the
-- counts, sums and maxima that merge exactly. A refresh reads the grain rows of the days its
-- batches touched and only the fact rows of those batches, then replaces both the marts' and
-- the grain's rows of those days in one transaction, with the batches' summary_refresh rows.
-- A summarizer's start thus costs what is pending, not a read of the whole fact table.
CREATE TABLE IF NOT EXISTS mart_grain (
    time_id           INTEGER     NOT NULL,
    hour_utc          TIMESTAMP   NOT NULL,
    customer_region   VARCHAR     NOT NULL,
    account_type      VARCHAR     NOT NULL,
    status            VARCHAR     NOT NULL,
    txn_count         BIGINT      NOT NULL,
    total_amount      DOUBLE      NOT NULL,
    duration_sum      DOUBLE,
    duration_count    BIGINT      NOT NULL,
    newest_event_time TIMESTAMPTZ NOT NULL,
    last_load_time    TIMESTAMPTZ NOT NULL
);

-- The grain starts empty: forgetting which batches were summarized makes the next refresh read
-- every batch's fact rows once and rebuild the marts' days from them (as 002 did).
DELETE FROM summary_refresh;
