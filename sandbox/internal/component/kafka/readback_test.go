package kafka_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill/kafka"
)

// TestReadBackTellsDuplicatesFromForeignRecords writes, between two of
// the job's batches, copies of three of its records (with its run header,
// as a broker storing a batch twice would hold them) and two records of
// another writer; the read-back of the unacknowledged offsets finds
// exactly those.
func TestReadBackTellsDuplicatesFromForeignRecords(t *testing.T) {
	const partitions = 1
	c := newCluster(t, partitions)
	cfg := testConfig(c.ListenAddrs())
	cfg.RunID = "run-1"
	p := startProducer(t, cfg)
	ctx := context.Background()
	before, err := p.EndOffsets(ctx, partitions)
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
	produce(0, 50)
	other, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, r := range []*kgo.Record{
		{Key: wireKey(7), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: kafka.RunHeader, Value: []byte("run-1")}}},
		{Key: wireKey(8), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: kafka.RunHeader, Value: []byte("run-1")}}},
		{Key: wireKey(900), Value: []byte("cdc")},
		{Key: wireKey(8), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: kafka.RunHeader, Value: []byte("run-1")}}},
		{Key: wireKey(901), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: kafka.RunHeader, Value: []byte("run-0")}}}, // an earlier attempt
	} {
		if err := other.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(50, 100)

	w := p.Written()
	gaps := map[int32][][2]int64{}
	for _, pw := range w.PartitionWrites() {
		gaps[pw.Partition] = w.Gaps(pw.Partition, before[pw.Partition].End, pw.HighestOffset)
	}
	if len(gaps[0]) != 1 || gaps[0][0] != [2]int64{50, 54} {
		t.Fatalf("gaps %v; want offsets 50–54", gaps)
	}
	d, err := p.ReadBack(ctx, gaps, "run-1", kafka.ReadBackLimits{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(d.Keys)
	if d.Status != "checked" || d.Unacknowledged != 5 || d.Read != 5 || d.Records != 3 || d.Foreign != 2 || !slices.Equal(d.Keys, []int64{7, 8}) {
		t.Fatalf("read-back %+v", d)
	}

	// Nothing unacknowledged: nothing to read.
	if d, err := p.ReadBack(ctx, map[int32][][2]int64{0: nil}, "run-1", kafka.ReadBackLimits{}); err != nil || d.Read != 0 || d.Status != "checked" {
		t.Fatalf("empty read-back %+v %v", d, err)
	}
	// A limit cuts it short, and says so.
	if d, err := p.ReadBack(ctx, gaps, "run-1", kafka.ReadBackLimits{MaxRecords: 2}); err != nil || d.Status != "partial" || d.Reason == "" {
		t.Fatalf("limited read-back %+v %v", d, err)
	}
}
