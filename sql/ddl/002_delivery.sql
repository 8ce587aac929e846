-- Delivery: the messages sent (receipts, reminders, summaries). Model tables declare their own
-- shape in their model file (sql/<layer>/<name>.sql).

-- One row per message sent (or written to the outbox); the key + content hash stop duplicates.
create table if not exists notification_log (
    notification_key varchar not null,
    recipient varchar not null,
    subject varchar,
    content_hash varchar not null,
    kind varchar not null,
    channel varchar not null,
    sent_at timestamptz not null
);
