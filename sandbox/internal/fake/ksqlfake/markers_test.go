package ksqlfake

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTrailingTransactionMarkerCommit writes a transaction whose commit
// marker is the partition's last entry, after the query has processed
// (and committed) the transaction's record: Kafka Streams before 3.1
// never commits past the marker, later ones do.
func TestTrailingTransactionMarkerCommit(t *testing.T) {
	for _, c := range []struct {
		version string
		want    int64
	}{{"0.22.0", 1}, {"7.0.0", 1}, {"0.23.1", 2}, {"0.29.0", 2}} {
		t.Run(c.version, func(t *testing.T) {
			e := newEnv(t, 1)
			s := e.start(func(cfg *Config) { cfg.Version, cfg.CommitInterval = c.version, 20*time.Millisecond })
			tx, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.TransactionalID("cdc-"+c.version),
				kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			ctx := context.Background()
			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := tx.ProduceSync(ctx, &kgo.Record{Key: e.key(1), Value: e.value(10)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the record's commit", func() bool { return s.Committed()[0] == 1 })
			if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond) // fetch the marker, commit a few times
			if got := s.Committed()[0]; got != c.want {
				t.Fatalf("committed %d after a trailing commit marker; want %d", got, c.want)
			}
			e.produce(0, e.key(2), e.value(20))
			waitFor(t, "the next record's commit", func() bool { return s.Committed()[0] == 3 })
		})
	}
}
