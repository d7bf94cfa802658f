// Package bench measures the backfill's throughput against an in-process
// kfake broker: the raw confluent-kafka-go produce limit, the job's real
// pipeline, a seed-like one-record-at-a-time baseline, and the job against
// a discarding producer (to separate the job's memory from the broker's).
//
// Each scenario runs in its own child process (the bench binary re-executed
// with -scenario) so that CPU seconds and peak RSS belong to that scenario
// alone; the parent prints one table. The job's binary never links this
// package. Nothing here asserts on timings: it prints figures.
package bench
