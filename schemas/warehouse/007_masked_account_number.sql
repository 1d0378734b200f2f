-- The flattened view names the masked account column as the star schema does,
-- `masked_account_number`, so queries written against the design run unmodified. The column it
-- had under the name `account_number` (the same masked value) stays for the queries that use it.
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
    f.channel,
    a.masked_account_number,
    a.masked_account_number AS account_number,
    a.account_type,
    a.customer_region,
    f.load_timestamp,
    f.batch_id              AS load_batch_id
FROM transaction_fact f
JOIN calendar_view t USING (time_id)
JOIN account_view a USING (account_id);
