-- MIN(order_id) per account: the table the backfill verifies against.
-- It must aggregate every record of the topic, including any written
-- before the table existed, so this query starts from the earliest offset
-- (the ksqlDB default is latest). SET applies to this file only.
SET 'auto.offset.reset'='earliest';

CREATE TABLE `table_min_order`
  WITH (kafka_topic='TABLE.MIN_ORDER', key_format='AVRO', value_format='AVRO', partitions=1) AS
  SELECT account_id, MIN(order_id) AS min_order_id FROM `stream_order_insert` GROUP BY account_id;
