-- MIN(order_id) and COUNT(*) per account in one aggregation: the table
-- the counting pipeline's backfill verifies against (ksqldb.table:
-- table_first_order) and whose changes V000008 announces. A user's records
-- reach this one query one at a time, so exactly one update carries
-- ORDER_COUNT = 1, and a re-sent record only raises the count.
-- Table aggregations cannot be changed in place: this is a new table,
-- beside `table_min_order`, which existing users keep.
-- Like V000002 it reads from the earliest offset and inherits the stream
-- topic's partition count. SET applies to this file only.
SET 'auto.offset.reset'='earliest';
-- The record cache off for this query: with the default cache (10 MB,
-- flushed at each 2 s commit) two orders of a new user in one commit
-- interval collapse into one update with ORDER_COUNT = 2, and the user is
-- never announced. A server-wide ksql.streams.statestore.cache.max.bytes
-- (Kafka Streams 3.4+) overrides this setting: see the README.
SET 'cache.max.bytes.buffering'='0';
-- Exactly-once: a crash can neither count a record twice nor lose an
-- update. exactly_once_v2 needs Kafka Streams 3.0 (ksqlDB 0.21+, CP 7.0+)
-- and brokers 2.5+; on ksqlDB 0.15–0.20 / CP 6.2 write exactly_once_beta
-- here before the first apply.
SET 'processing.guarantee'='exactly_once_v2';

CREATE TABLE `table_first_order`
  WITH (kafka_topic='TABLE.FIRST_ORDER', key_format='AVRO', value_format='AVRO') AS
  SELECT account_id, MIN(order_id) AS min_order_id, COUNT(*) AS order_count
  FROM `stream_order_insert` GROUP BY account_id;
