package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill/kafka"
)

// readBackGaps writes foreign records through write, then 20 of the job's
// own around them, and returns the producer and the offsets the job did
// not acknowledge.
func readBackGaps(t *testing.T, brokers []string, write func()) (*kafka.Producer, map[int32][][2]int64) {
	t.Helper()
	cfg := testConfig(brokers)
	cfg.RunID = "run-1"
	p := startProducer(t, cfg)
	ctx := context.Background()
	before, err := p.EndOffsets(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	produce := func(from, to int) {
		for k := from; k < to; k++ {
			if err := p.Produce(ctx, wireKey(k), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 10)
	write()
	produce(10, 20)
	w := p.Written()
	gaps := map[int32][][2]int64{}
	for _, pw := range w.PartitionWrites() {
		gaps[pw.Partition] = w.Gaps(pw.Partition, before[pw.Partition].End, pw.HighestOffset)
	}
	if len(gaps[0]) != 1 {
		t.Fatalf("gaps %v; want one range of foreign offsets", gaps)
	}
	return p, gaps
}

// foreignGap is readBackGaps with three records of another (plain)
// writer between the job's, on a new cluster; it returns that writer.
func foreignGap(t *testing.T) (*kgo.Client, *kafka.Producer, map[int32][][2]int64) {
	t.Helper()
	c := newCluster(t, 1)
	other, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	p, gaps := readBackGaps(t, c.ListenAddrs(), func() {
		for i := range 3 {
			if err := other.ProduceSync(context.Background(), &kgo.Record{Key: wireKey(900 + i), Value: []byte("cdc")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	})
	return other, p, gaps
}

// A read-back that cannot read every unacknowledged offset says so
// (status partial, with the reason) instead of reporting them checked.
func TestReadBackSaysWhatItCouldNotRead(t *testing.T) {
	ctx := context.Background()

	t.Run("open transaction", func(t *testing.T) {
		c := newCluster(t, 1)
		// Another writer's transaction stays open across the job's
		// records: a read_committed consumer stops at its first offset,
		// the last stable offset.
		tx, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic),
			kgo.TransactionalID("cdc-insert-into"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		p, gaps := readBackGaps(t, c.ListenAddrs(), func() {
			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := tx.ProduceSync(ctx, &kgo.Record{Key: wireKey(900 + i), Value: []byte("cdc")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		})
		d, err := p.ReadBack(ctx, gaps, "run-1", kafka.ReadBackLimits{Timeout: 10 * time.Second})
		if err != nil || d.Status != "partial" || !strings.Contains(d.Reason, "last stable offset") {
			t.Fatalf("read-back under an open transaction: %+v %v", d, err)
		}
	})

	t.Run("below log start", func(t *testing.T) {
		other, p, gaps := foreignGap(t)
		// Retention (here kafka-delete-records) removes the first foreign record.
		del := kadm.Offsets{}
		del.Add(kadm.Offset{Topic: topic, Partition: 0, At: gaps[0][0][0] + 1})
		if _, err := kadm.NewClient(other).DeleteRecords(ctx, del); err != nil {
			t.Fatal(err)
		}
		d, err := p.ReadBack(ctx, gaps, "run-1", kafka.ReadBackLimits{Timeout: 10 * time.Second})
		if err != nil || d.Status != "partial" || !strings.Contains(d.Reason, "log start") || d.Read != 2 {
			t.Fatalf("read-back below the log start: %+v %v", d, err)
		}
	})

	t.Run("limits", func(t *testing.T) {
		_, p, gaps := foreignGap(t)
		d, err := p.ReadBack(ctx, gaps, "run-1", kafka.ReadBackLimits{MaxRecords: 2})
		if err != nil || d.Status != "partial" || !strings.Contains(d.Reason, "limit") || d.Read != 2 {
			t.Fatalf("limited read-back %+v %v", d, err)
		}
	})
}
