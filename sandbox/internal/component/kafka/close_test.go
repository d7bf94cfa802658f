package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/backfill/kafka"
)

// TestCloseWithUndeliveredRecordsReturnsPromptly: with a broker that
// stopped answering, records stay undelivered after the flush gives up;
// Close must still return at once (purging them), so that the job can exit
// with its report before Kubernetes kills it.
func TestCloseWithUndeliveredRecordsReturnsPromptly(t *testing.T) {
	c := newCluster(t, 1)
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		return nil, nil, false
	})
	defer close(release)
	cfg := testConfig(c.ListenAddrs())
	cfg.MessageTimeout = 30 * time.Second
	p, err := kafka.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Partitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := p.Produce(context.Background(), []byte(fmt.Sprint(i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := p.Flush(ctx); err == nil {
		t.Fatal("flush succeeded against a broker that does not answer")
	}
	start := time.Now()
	p.Close()
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Close took %s with undelivered records", el)
	}
}
