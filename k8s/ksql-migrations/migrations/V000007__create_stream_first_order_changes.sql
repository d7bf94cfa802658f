-- The changes of `table_first_order` as a stream. CREATE STREAM … AS
-- SELECT from a table is refused in every release ("Your SELECT query
-- produces a TABLE", EngineExecutor, v0.15.0-ksqldb to v0.29.0); a plain
-- CREATE STREAM over the table's topic reads the same records. It starts
-- no query and keeps the topic's registered subjects untouched.
-- Apply only after the backfill into table_first_order is verified.
CREATE STREAM `stream_first_order_changes` (account_id BIGINT KEY, min_order_id BIGINT, order_count BIGINT)
  WITH (kafka_topic='TABLE.FIRST_ORDER', key_format='AVRO', value_format='AVRO');
