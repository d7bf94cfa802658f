-- The announcer of the counting pipeline: first_order=true for the update
-- that brought a user's count to 1. Apply only after the backfill into
-- table_first_order is verified, so that every historical user's count-1
-- update is already behind the latest offset this query starts from.
-- Consumers of STREAM.FIRST_ORDER must read with
-- isolation.level=read_committed, or they also see the records of aborted
-- transactions. SET applies to this file only.
SET 'auto.offset.reset'='latest';
-- Exactly-once, as in V000006 (exactly_once_beta before Kafka Streams 3.0).
SET 'processing.guarantee'='exactly_once_v2';

CREATE STREAM `stream_first_order` WITH (kafka_topic='STREAM.FIRST_ORDER', key_format='JSON', value_format='JSON') AS
  SELECT account_id, min_order_id AS first_order_id, true AS first_order
  FROM `stream_first_order_changes`
  WHERE order_count = 1 EMIT CHANGES;
