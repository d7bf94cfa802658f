-- MIN(order_id) per account: the table the backfill verifies against.
-- It must aggregate every record of the topic, including any written
-- before the table existed, so this query starts from the earliest offset
-- (the ksqlDB default is latest). SET applies to this file only.
-- No PARTITIONS: the table's topic takes the stream topic's partition
-- count (CREATE … AS SELECT copies the source's), which V000003's
-- stream–table join needs ("the number of partitions don't match").
SET 'auto.offset.reset'='earliest';

CREATE TABLE `table_min_order`
  WITH (kafka_topic='TABLE.MIN_ORDER', key_format='AVRO', value_format='AVRO') AS
  SELECT account_id, MIN(order_id) AS min_order_id FROM `stream_order_insert` GROUP BY account_id;
