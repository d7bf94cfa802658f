package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A local queue far smaller than the run: Produce blocks while it is full
// and resumes as deliveries drain it; every record lands exactly once.
func TestFullLocalQueueBlocksProduceUntilDeliveriesDrainIt(t *testing.T) {
	const partitions, n, queue = 3, 20000, 200
	c := newCluster(t, partitions)
	cfg := testConfig(c.ListenAddrs())
	cfg.QueueMaxMessages = queue
	p := startProducer(t, cfg)
	ctx := context.Background()
	for i := range n {
		if err := p.Produce(ctx, wireKey(i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := p.Deliveries(); d.Produced != n || d.Acked != n || d.Failed != 0 {
		t.Fatalf("deliveries = %+v, want %d acknowledged", d, n)
	}
	if got := storedRecords(t, c); got != n {
		t.Fatalf("the topic holds %d records, want %d", got, n)
	}
}

// A full queue that never drains (the broker stopped answering) must not
// hold Produce past its context: SIGTERM stops the run.
func TestProduceOnAFullQueueReturnsWhenCtxEnds(t *testing.T) {
	c := newCluster(t, 1)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, fmt.Errorf("broker gone"), true
	})
	cfg := testConfig(c.ListenAddrs())
	cfg.QueueMaxMessages = 10
	p := startProducer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 10 {
		if err := p.Produce(ctx, wireKey(i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- p.Produce(ctx, wireKey(10), []byte("v")) }()
	select {
	case err := <-done:
		t.Fatalf("Produce on a full queue returned %v before ctx ended", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Produce returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Produce still blocked 5s after ctx ended")
	}
	if d := p.Deliveries(); d.Produced != 10 {
		t.Fatalf("deliveries = %+v, want 10 produced", d)
	}
}
