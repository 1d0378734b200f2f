-- Transaction schema v2 adds the optional `channel` (how the customer initiated it). v1 and v2
-- events load into the same table and the same files; a v1 event's channel is NULL.
ALTER TABLE transaction_fact ADD COLUMN channel VARCHAR;

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
    a.masked_account_number AS account_number,
    a.account_type,
    a.customer_region,
    f.load_timestamp,
    f.batch_id              AS load_batch_id
FROM transaction_fact f
JOIN calendar_view t USING (time_id)
JOIN account_view a USING (account_id);
