-- Cutover to the counting pipeline (V000005–V000008), step 1: stop the
-- join announcer before anything is backfilled. stream_min_order announces
-- every record of `stream_order_insert` whose order equals the user's
-- minimum, so each re-sent minimum would be announced again.
-- DROP STREAM terminates the query that created the stream (EngineContext
-- maybeTerminateCreateAsQuery, confluentinc/ksql v0.15.0-ksqldb to v0.29.0)
-- and keeps its topic STREAM.MIN_ORDER: consumers drain it, then move to
-- STREAM.FIRST_ORDER (V000008).
-- See the README: on 0.28.2 / CP 7.3 and later, PAUSE the CDC query first.
DROP STREAM IF EXISTS `stream_min_order`;
