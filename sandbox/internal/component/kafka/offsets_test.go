package kafka_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// TestWrittenHoldsExactlyTheAcknowledgedOffsets checks the producer's
// offset ranges and the topic's watermarks against what an independent
// reader finds on the topic, with records of another writer in between.
func TestWrittenHoldsExactlyTheAcknowledgedOffsets(t *testing.T) {
	const partitions, n = 3, 3000
	c := newCluster(t, partitions)
	other, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	foreign := func(part int32) {
		if err := other.ProduceSync(context.Background(), &kgo.Record{Partition: part, Value: []byte("cdc")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	foreign(0)
	foreign(0)
	p := startProducer(t, testConfig(c.ListenAddrs()))
	ctx := context.Background()
	before, err := p.EndOffsets(ctx, partitions)
	if err != nil {
		t.Fatal(err)
	}
	want := []backfill.Watermarks{{Partition: 0, Start: 0, End: 2}, {Partition: 1}, {Partition: 2}}
	if !reflect.DeepEqual(before, want) {
		t.Fatalf("EndOffsets = %+v, want %+v", before, want)
	}
	for i := range n {
		if err := p.Produce(ctx, []byte(fmt.Sprint(i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			foreign(0)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mine := map[int32][]int64{}
	for _, r := range consume(t, c.ListenAddrs(), n+3) {
		if string(r.Value) == "v" {
			mine[r.Partition] = append(mine[r.Partition], r.Offset)
		}
	}
	w := p.Written()
	var acked int64
	for _, pw := range w.PartitionWrites() {
		offs := mine[pw.Partition]
		if int64(len(offs)) != pw.Acked || offs[0] != pw.LowestOffset || offs[len(offs)-1] != pw.HighestOffset {
			t.Errorf("partition %d: written %+v, topic holds the job's records at %d offsets from %d to %d", pw.Partition, pw, len(offs), offs[0], offs[len(offs)-1])
		}
		acked += pw.Acked
	}
	if acked != n {
		t.Fatalf("written ranges hold %d records, want %d", acked, n)
	}
	// Every offset the ranges leave out on partition 0 holds another
	// writer's record.
	p0 := mine[0]
	for _, g := range w.Gaps(0, 0, p0[len(p0)-1]) {
		for o := g[0]; o <= g[1]; o++ {
			if !isForeign(t, o, p0) {
				t.Errorf("gap offset %d on partition 0 holds a job record", o)
			}
		}
	}
	after, err := p.EndOffsets(ctx, partitions)
	if err != nil {
		t.Fatal(err)
	}
	for i, wm := range after {
		if want := before[i].End + int64(len(mine[int32(i)])); i > 0 && wm.End != want {
			t.Errorf("partition %d end %d, want %d", i, wm.End, want)
		}
	}
}

func isForeign(t *testing.T, off int64, mine []int64) bool {
	t.Helper()
	for _, o := range mine {
		if o == off {
			return false
		}
	}
	return true
}

func TestEndOffsetsOnAnInterruptedContextReturnsAndCloseWaits(t *testing.T) {
	c := newCluster(t, 2)
	p := startProducer(t, testConfig(c.ListenAddrs()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.EndOffsets(ctx, 2); backfill.KindOf(err) != backfill.KindInterrupted {
		t.Fatalf("err = %v, want an interruption", err)
	}
	p.Close() // must not destroy the handle under the abandoned request (run with -race)
}
