-- The consumer of the result: emits first_order=true for an account's
-- first order. Apply only after the backfill is verified (see README):
-- it must not replay history, or it would announce a "first order" for
-- every historical order, so it starts from the latest offset whatever
-- the server default is. SET applies to this file only.
SET 'auto.offset.reset'='latest';

CREATE STREAM `stream_min_order` WITH (kafka_topic='STREAM.MIN_ORDER', key_format='JSON', value_format='JSON') AS
  SELECT s.account_id, true AS first_order FROM `stream_order_insert` s
  LEFT JOIN `table_min_order` t ON s.account_id = t.account_id
  WHERE t.account_id IS NULL OR t.min_order_id = s.order_id EMIT CHANGES;
