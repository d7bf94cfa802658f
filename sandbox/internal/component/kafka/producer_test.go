package kafka_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
)

func TestProduceAccountsEveryRecordAndPartitionsLikeJava(t *testing.T) {
	const partitions, n = 6, 3000
	c := newCluster(t, partitions)
	p, err := kafka.New(testConfig(c.ListenAddrs()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	got, err := p.Partitions(ctx)
	if err != nil || got != partitions {
		t.Fatalf("Partitions = %d, %v; want %d", got, err, partitions)
	}
	for i := range n {
		key := binary.AppendUvarint([]byte{0, 0, 0, 0, 1}, uint64(i)*2) // wire-format long key
		if err := p.Produce(ctx, key, []byte(fmt.Sprintf("v%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d := p.Deliveries()
	if d.Produced != n || d.Acked != n || d.Failed != 0 {
		t.Fatalf("deliveries = %+v, want %d produced and acked", d, n)
	}
	recs := consume(t, c.ListenAddrs(), n)
	seen := map[string]bool{}
	used := map[int32]bool{}
	for _, r := range recs {
		if want := murmur2.Partition(r.Key, partitions); r.Partition != want {
			t.Fatalf("key %x on partition %d, Java's murmur2 puts it on %d", r.Key, r.Partition, want)
		}
		if seen[string(r.Key)] {
			t.Fatalf("key %x delivered twice", r.Key)
		}
		seen[string(r.Key)] = true
		used[r.Partition] = true
	}
	if len(seen) != n || len(used) != partitions {
		t.Fatalf("got %d distinct keys on %d partitions, want %d on %d", len(seen), len(used), n, partitions)
	}
}

func TestPartitionsFailsFastOnUnreachableBrokers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg := testConfig([]string{addr})
	cfg.ConnectTimeout = 2 * time.Second
	p, err := kafka.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	_, err = p.Partitions(context.Background())
	if backfill.KindOf(err) != backfill.KindUnavailable {
		t.Fatalf("want an unavailable error, got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("took %s to fail", elapsed)
	}
	t.Log(err)
}

func TestPartitionsMissingTopic(t *testing.T) {
	c := newCluster(t, 1)
	cfg := testConfig(c.ListenAddrs())
	cfg.Topic = "NOT.THERE"
	p, err := kafka.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Partitions(context.Background()); backfill.KindOf(err) != backfill.KindContract {
		t.Fatalf("want a contract error for a missing topic, got %v", err)
	}
}

func TestForcedPropertiesCannotBeOverridden(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:1"})
	cfg.Properties = map[string]string{"partitioner": "consistent_random"}
	if _, err := kafka.New(cfg, nil); backfill.KindOf(err) != backfill.KindConfig {
		t.Fatalf("want a config error, got %v", err)
	}
}

func TestDeliveryFailureStopsProduce(t *testing.T) {
	c := newCluster(t, 1)
	cfg := testConfig(c.ListenAddrs())
	cfg.MessageTimeout = time.Second
	p := startProducer(t, cfg)
	ctx := context.Background()
	c.Close() // the broker is gone
	for i := 0; i < 10; i++ {
		if err := p.Produce(ctx, []byte{0, 0, 0, 0, 1, byte(i * 2)}, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	d := p.Deliveries()
	if d.Failed != 10 || d.Acked != 0 || len(d.Errors) == 0 {
		t.Fatalf("deliveries = %+v, want 10 failed with reasons", d)
	}
	if err := p.Produce(ctx, []byte{0, 0, 0, 0, 1, 2}, []byte("v")); backfill.KindOf(err) != backfill.KindProduce {
		t.Fatalf("Produce after a failed delivery = %v, want a produce error", err)
	}
}
