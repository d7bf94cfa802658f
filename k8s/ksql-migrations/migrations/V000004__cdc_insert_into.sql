-- Switches CDC on: new orders from the Debezium stream `stg_order` flow
-- into `stream_order_insert`.
-- RUN THIS ONLY AFTER THE BACKFILL IS VERIFIED: `backfill run` must have
-- exited 0 with "verification": {"status": "passed"} in its report.
-- `stg_order` is created by the CDC setup, not by these migrations.
INSERT INTO `stream_order_insert`
  SELECT after->user_id AS account_id, after->order_id AS order_id FROM `stg_order`
  WHERE op = 'c' AND after->user_id IS NOT NULL AND after->order_id IS NOT NULL
  PARTITION BY after->user_id EMIT CHANGES;
