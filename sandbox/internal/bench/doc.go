// Package bench measures the backfill's throughput against a kfake broker:
// the raw confluent-kafka-go produce limit, the job's real pipeline, a
// seed-like one-record-at-a-time baseline, and the job against a
// discarding producer (no librdkafka, no broker).
//
// Each scenario runs in its own child process (the bench binary re-executed
// with -scenario) so that its CPU seconds and peak RSS belong to that
// scenario alone: the job and librdkafka, as a container's limits would see
// them. The broker runs in the parent, one kfake cluster for every
// scenario, its topic deleted and re-created before each run; the parent's
// CPU time over a child's run is reported as the broker's. A child run by
// hand without -brokers starts its own broker, whose cost then counts in
// the child's figures. The parent prints one table. The job's binary never
// links this package. Nothing here asserts on timings: it prints figures.
package bench
