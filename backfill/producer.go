package backfill

import "context"

// Producer sends encoded records to the stream's topic and accounts for
// every delivery.
type Producer interface {
	// Produce enqueues one record. It copies key and value before it
	// returns, blocks while the local queue is full, and returns an error
	// once any earlier delivery has failed so that the run stops early.
	Produce(ctx context.Context, key, value []byte) error
	// Flush waits until every enqueued record is acknowledged or has
	// failed, or until ctx ends.
	Flush(ctx context.Context) error
	// Deliveries returns the delivery accounting so far.
	Deliveries() Deliveries
}

// Deliveries accounts for the records handed to a Producer.
type Deliveries struct {
	Produced int64    // records enqueued
	Acked    int64    // records the broker acknowledged (acks=all)
	Failed   int64    // records whose delivery failed
	Errors   []string // the first few delivery errors, for the report
}

// Undelivered returns how many enqueued records have neither been
// acknowledged nor failed.
func (d Deliveries) Undelivered() int64 { return d.Produced - d.Acked - d.Failed }
