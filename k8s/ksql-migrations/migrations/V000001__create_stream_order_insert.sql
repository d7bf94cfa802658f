-- The stream the backfill job and, later, CDC write to. Created with
-- backquotes, so its name stays lower case: every later statement must
-- write `stream_order_insert` in backquotes.
-- ksqlDB registers STREAM.ORDER.INSERT-key ("long") and
-- STREAM.ORDER.INSERT-value (record KsqlDataSourceSchema) when this runs;
-- the backfill encodes with exactly those schemas.
-- If the topic already exists, PARTITIONS must equal its partition count.
CREATE STREAM `stream_order_insert` (account_id BIGINT KEY, order_id BIGINT)
  WITH (kafka_topic='STREAM.ORDER.INSERT', key_format='AVRO', value_format='AVRO', partitions=1);
