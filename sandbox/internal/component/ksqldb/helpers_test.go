package ksqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
)

func newWorld(t *testing.T, partitions int32) *world {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	w := &world{t: t, cluster: c, reg: reg}
	w.schemas = backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: topic + "-key", Version: 1, ID: w.register(topic+"-key", ksqlKeySchema), Schema: ksqlKeySchema},
		Value: backfill.RegisteredSchema{Subject: topic + "-value", Version: 1, ID: w.register(topic+"-value", ksqlValueSchema), Schema: ksqlValueSchema},
	}
	return w
}

func client(t *testing.T, url string, mod func(*ksqldb.Config)) *ksqldb.Client {
	t.Helper()
	cfg := ksqldb.Config{URL: url, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 10 * time.Second, Retries: 5,
		Stream: "stream_order_insert", Table: "table_min_order"}
	if mod != nil {
		mod(&cfg)
	}
	c, err := ksqldb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func expectation() ksqldb.Expectation {
	return ksqldb.Expectation{Topic: topic, KeyColumn: "account_id", ValueColumn: "ORDER_ID", Partitions: 3,
		KeySubject: topic + "-key", ValueSubject: topic + "-value"}
}

// catchUp waits until the double's table query has committed past target.
func catchUp(t *testing.T, c *ksqldb.Client, facts ksqldb.Facts, target map[int32]int64) {
	t.Helper()
	if _, err := c.CatchUp(context.Background(), facts, target, ksqldb.CatchUpOptions{Stage: "in a test", Poll: 20 * time.Millisecond, Stall: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
}

func rowsOf(n int, key func(i int) int64, value func(i int) int64) []backfill.KeyValue {
	out := make([]backfill.KeyValue, n)
	for i := range out {
		out[i] = backfill.KeyValue{Key: key(i), Value: value(i)}
	}
	return out
}

func record(t *testing.T, mode ksqldb.VerifyMode, size int, rows []backfill.KeyValue) *ksqldb.Recorder {
	t.Helper()
	r, err := ksqldb.NewRecorder(mode, size, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(rows); i += 64 {
		r.ObserveBatch(rows[i:min(i+64, len(rows))])
	}
	return r
}

func preflight(t *testing.T, c *ksqldb.Client) ksqldb.Facts {
	t.Helper()
	f, err := c.Preflight(context.Background(), expectation())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fast are verification options for a table expected to pass.
var fast = ksqldb.VerifyOptions{BatchKeys: 37, Recheck: 50 * time.Millisecond, UseQueryStream: true}
