package ksqldb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// cdcTransaction writes rows to partition 0 in one transaction, as an
// exactly_once INSERT INTO does, waits until the table's query has
// committed past them and then commits the transaction: the partition's
// last entry is then a commit marker the query has read but, before
// Kafka Streams 3.1, never commits.
func (w *world) cdcTransaction(s *ksqlfake.Server, n int) {
	t := w.t
	t.Helper()
	tx, err := kgo.NewClient(kgo.SeedBrokers(w.cluster.ListenAddrs()...), kgo.TransactionalID("cdc"),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx := context.Background()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	before := s.Committed()[0]
	for i := range n {
		if err := tx.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("cdc")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); s.Committed()[0] < before+int64(n); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the table's query committed %d on partition 0; want %d", s.Committed()[0], before+int64(n))
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// The delta barrier's target is the topic's end offset, which
// counts a trailing transaction marker that ksqlDB <= 0.22 never commits:
// lag made only of markers is caught up, not a stall (exit 6).
func TestCatchUpTreatsMarkerOnlyLagAsCaughtUp(t *testing.T) {
	for _, version := range []string{"0.22.0", "0.29.0"} {
		t.Run(version, func(t *testing.T) {
			w := newWorld(t, 3)
			s := w.ksql(func(c *ksqlfake.Config) { c.Version = version })
			c := client(t, s.URL(), nil)
			facts := preflight(t, c)
			rows := rowsOf(30, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
			w.produce(w.schemas, rows, nil)
			w.cdcTransaction(s, 2)
			target := w.endOffsets() // what the job reads before a delta run
			producer := w.producer(t)
			res, err := c.CatchUp(context.Background(), facts, target, ksqldb.CatchUpOptions{Stage: "before delta lookups", Poll: 20 * time.Millisecond, Stall: time.Second,
				OnlyMarkers: producer.OnlyMarkers}) // as the job wires it
			if err != nil || res.Status != "caught_up" {
				t.Fatalf("catch-up %+v: %v", res, err)
			}
			if strings.Contains(version, "0.22") && s.Committed()[0] == target[0] {
				t.Fatalf("the double committed past the marker (%d): the test does not exercise Kafka Streams before 3.1", target[0])
			}
		})
	}
}

// producer is the job's Kafka adapter on this world's topic.
func (w *world) producer(t *testing.T) *kafka.Producer {
	t.Helper()
	p, err := kafka.New(kafka.Config{Brokers: w.cluster.ListenAddrs(), Topic: topic, ConnectTimeout: 10 * time.Second, MessageTimeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// OnlyMarkers tells a trailing marker from records the query has not
// read, whether or not a transaction is still open.
func TestOnlyMarkersTellsMarkersFromRecords(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Version = "0.22.0" })
	w.cdcTransaction(s, 2) // offsets 0, 1 and the marker at 2
	p := w.producer(t)
	ctx := context.Background()
	for _, c := range []struct {
		from, to int64
		want     bool
	}{{0, 3, false}, {1, 3, false}, {2, 3, true}, {3, 3, true}} {
		if got, err := p.OnlyMarkers(ctx, 0, c.from, c.to); err != nil || got != c.want {
			t.Errorf("OnlyMarkers(0, %d, %d) = %v, %v; want %v", c.from, c.to, got, err, c.want)
		}
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(w.cluster.ListenAddrs()...), kgo.TransactionalID("open"),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil { // offset 3, uncommitted
		t.Fatal(err)
	}
	if got, err := p.OnlyMarkers(ctx, 0, 2, 4); err != nil || got {
		t.Errorf("a record of an open transaction counted as a marker: %v, %v", got, err)
	}
}
