package ksqldb_test

import (
	"context"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
)

// The schemas ksqlDB registers for stream_order_insert when CREATE STREAM
// runs: the bare primitive "long" for the key, a KsqlDataSourceSchema record
// with a nullable ORDER_ID for the value.
const topic = "STREAM.ORDER.INSERT"

var (
	ksqlKeySchema     = backfilltest.KsqlKeySchema
	ksqlValueSchema   = backfilltest.KsqlValueSchema
	ksqlValueSchemaV2 = backfilltest.KsqlValueSchemaV2 // ksqlDB ≤0.28 registers it on the first INSERT … VALUES
)

// world is Kafka (kfake), the registry double seeded with ksqlDB's schemas,
// and a way to produce with the real confluent-kafka-go.
type world struct {
	t       *testing.T
	cluster *kfake.Cluster
	reg     *srfake.Server
	schemas backfill.Schemas
}

func (w *world) register(subject, schema string) int {
	w.t.Helper()
	id, err := w.reg.Register(subject, schema)
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// ksql starts the ksqlDB double over this world, committing every 50ms.
func (w *world) ksql(mod func(*ksqlfake.Config)) *ksqlfake.Server {
	w.t.Helper()
	cfg := ksqlfake.Config{Brokers: w.cluster.ListenAddrs(), Registry: w.reg, RegistryURL: w.reg.URL(), Topic: topic, CommitInterval: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := ksqlfake.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(s.Close)
	return s
}

// produce encodes rows (user_id, min_order_id) with the domain's encoder
// under schemas and produces them with confluent-kafka-go: idempotent,
// acks=all, murmur2_random unless props say otherwise. It returns once
// every record is acknowledged, with the offset after the highest one on
// each partition written to.
func (w *world) produce(schemas backfill.Schemas, rows []backfill.KeyValue, props ckafka.ConfigMap) map[int32]int64 {
	t := w.t
	t.Helper()
	codec, err := backfill.NewCodec(schemas)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.Bind(backfill.Mapping{KeyColumn: "user_id"}, []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "min_order_id", Type: backfill.TypeInt64}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ckafka.ConfigMap{
		"bootstrap.servers":  strings.Join(w.cluster.ListenAddrs(), ","),
		"enable.idempotence": true,
		"acks":               "all",
		"partitioner":        "murmur2_random",
		"linger.ms":          5,
		"log_level":          3,
	}
	for k, v := range props {
		cfg[k] = v
	}
	p, err := ckafka.NewProducer(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	wr := enc.NewWriter()
	deliveries := make(chan ckafka.Event, len(rows))
	tp := topic
	for _, r := range rows {
		key, value, skip, err := wr.Encode([]any{r.Key, r.Value})
		if err != nil || skip != "" {
			t.Fatalf("encode %v: %q %v", r, skip, err)
		}
		msg := &ckafka.Message{TopicPartition: ckafka.TopicPartition{Topic: &tp, Partition: ckafka.PartitionAny},
			Key: append([]byte(nil), key...), Value: append([]byte(nil), value...)}
		if err := p.Produce(msg, deliveries); err != nil {
			t.Fatal(err)
		}
	}
	next := map[int32]int64{}
	for range rows {
		select {
		case ev := <-deliveries:
			m := ev.(*ckafka.Message)
			if m.TopicPartition.Error != nil {
				t.Fatalf("delivery: %v", m.TopicPartition.Error)
			}
			next[m.TopicPartition.Partition] = max(next[m.TopicPartition.Partition], int64(m.TopicPartition.Offset)+1)
		case <-time.After(30 * time.Second):
			t.Fatal("deliveries timed out")
		}
	}
	return next
}

// endOffsets returns every partition's end offset.
func (w *world) endOffsets() map[int32]int64 {
	w.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.cluster.ListenAddrs()...))
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range int32(3) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, p := range resp.Topics[0].Partitions {
		out[p.Partition] = p.Offset
	}
	return out
}

// waitConsumed waits until the double has read n records (decoded or dropped).
func waitConsumed(t *testing.T, s *ksqlfake.Server, n int64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s.Processed()+s.Dropped() >= n {
			return
		}
	}
	t.Fatalf("the ksqlDB double consumed %d+%d of %d records", s.Processed(), s.Dropped(), n)
}

// short are verification options for a table expected to fail.
var short = ksqldb.VerifyOptions{BatchKeys: 50, Recheck: 50 * time.Millisecond, MaxExamples: 3}

func TestVerifyPassesFullAndSampleWithBigints(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Lag = 200 * time.Millisecond })
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	if facts.StreamKeyColumn != "ACCOUNT_ID" || facts.TableKeyColumn != "ACCOUNT_ID" || facts.TableValueColumn != "MIN_ORDER_ID" ||
		facts.StreamValueColumn != "ORDER_ID" || facts.Partitions != 3 || facts.QueryID == "" || facts.Stream != "stream_order_insert" {
		t.Fatalf("facts = %+v", facts)
	}
	// Keys and values above 2^53, odd so that float64 cannot hold them.
	rows := rowsOf(300, func(i int) int64 { return 1<<53 + 1 + 2*int64(i) }, func(i int) int64 { return 1<<60 + 1 + 2*int64(i) })
	catchUp(t, c, facts, w.produce(w.schemas, rows, nil))

	for _, tc := range []struct {
		mode        ksqldb.VerifyMode
		size        int
		queryStream bool
		checked     int64
		endpoint    string
	}{
		{ksqldb.ModeFull, 0, true, 300, "/query-stream"},
		{ksqldb.ModeSample, 40, false, 40, "/query"},
	} {
		opts := fast
		opts.UseQueryStream = tc.queryStream
		v, err := c.Verify(context.Background(), facts, record(t, tc.mode, tc.size, rows), opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		if v.Status != "passed" || v.Checked != tc.checked || v.Matched != tc.checked || v.Missing+v.Larger+v.TableSmaller != 0 || v.Endpoint != tc.endpoint || v.Observed != 300 {
			t.Errorf("%s: verification %+v", tc.mode, v)
		}
	}
	if s.Requests("/query-stream") == 0 || s.Requests("/query") == 0 {
		t.Errorf("both endpoints should have been used: %d, %d", s.Requests("/query-stream"), s.Requests("/query"))
	}
	none, _ := ksqldb.NewRecorder(ksqldb.ModeNone, 0, 0)
	if v, err := c.Verify(context.Background(), facts, none, fast); err == nil || backfill.KindOf(err) != backfill.KindInternal || v.Checked != 0 {
		t.Errorf("none: %+v %v, want an internal error: the job never verifies with verification off", v, err)
	}
}

func TestVerifyAcceptsKsqlDBsSecondValueSchemaVersion(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(nil)
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	v2 := w.schemas
	v2.Value.ID, v2.Value.Version, v2.Value.Schema = w.register(topic+"-value", ksqlValueSchemaV2), 2, ksqlValueSchemaV2
	if v2.Value.ID == w.schemas.Value.ID {
		t.Fatal("the registry double should give the second version its own id")
	}
	rows := rowsOf(50, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return 1000 + int64(i) })
	catchUp(t, c, facts, w.produce(v2, rows, nil))
	if _, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast); err != nil {
		t.Fatal(err)
	}
}

// wantVerifyFailure checks a KindVerify error whose message carries examples.
func wantVerifyFailure(t *testing.T, v backfill.Verification, err error, missing int64) {
	t.Helper()
	if backfill.KindOf(err) != backfill.KindVerify || backfill.KindVerify.ExitCode() != backfill.ExitVerify {
		t.Fatalf("want a verification failure, got kind %v: %v", backfill.KindOf(err), err)
	}
	if v.Status != "failed" || v.Missing != missing || len(v.Examples) == 0 ||
		!strings.Contains(err.Error(), v.Examples[0]) || !strings.Contains(v.Examples[0], "table MIN_ORDER_ID=missing") || !strings.Contains(v.Examples[0], "ACCOUNT_ID=") {
		t.Fatalf("verification %+v\nerror: %v", v, err)
	}
}

func TestVerifyFailsForWrongSchemaIDs(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(nil)
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(20, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return 500 + int64(i) })

	unknown := w.schemas
	unknown.Value.ID = 9999 // not in the registry
	w.produce(unknown, rows[:10], nil)
	swapped := w.schemas
	swapped.Key.ID = w.schemas.Value.ID // a registered id, but of the value's record schema
	w.produce(swapped, rows[10:], nil)
	waitConsumed(t, s, 20)
	catchUp(t, c, facts, w.endOffsets()) // dropped records advance the query's offsets too
	if s.Dropped() != 20 {
		t.Fatalf("the double dropped %d of 20 undecodable records", s.Dropped())
	}
	v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), short)
	wantVerifyFailure(t, v, err, 20)
}

func TestVerifyFailsForCRC32Partitioning(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(nil)
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(60, func(i int) int64 { return int64(i) * 7919 }, func(i int) int64 { return int64(i) + 1 })
	catchUp(t, c, facts, w.produce(w.schemas, rows, ckafka.ConfigMap{"partitioner": "consistent_random"}))
	waitConsumed(t, s, 60)
	if s.Dropped() != 0 {
		t.Fatalf("records were dropped (%d); they should decode and only sit on the wrong partitions", s.Dropped())
	}

	// librdkafka's consistent_random is CRC32(key) % partitions; ksqlDB
	// looks at murmur2(key) % partitions. Keys where they differ are invisible.
	codec, _ := backfill.NewCodec(w.schemas)
	enc, _ := codec.Bind(backfill.Mapping{KeyColumn: "user_id"}, []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "order_id", Type: backfill.TypeInt64}})
	wr := enc.NewWriter()
	var misplaced int64
	for _, r := range rows {
		key, _, _, _ := wr.Encode([]any{r.Key, r.Value})
		if int32(crc32.ChecksumIEEE(key)%3) != murmur2.Partition(key, 3) {
			misplaced++
		}
	}
	if misplaced == 0 {
		t.Fatal("test keys do not exercise partitioning")
	}
	v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), short)
	wantVerifyFailure(t, v, err, misplaced)
	if v.Matched != 60-misplaced {
		t.Errorf("matched %d, want %d", v.Matched, 60-misplaced)
	}
}

func TestCatchUpFailsWhenTheTableQueryStalls(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Lag = time.Hour })
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(30, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	target := w.produce(w.schemas, rows, nil)
	start := time.Now()
	res, err := c.CatchUp(context.Background(), facts, target, ksqldb.CatchUpOptions{Stage: "before verification", Poll: 20 * time.Millisecond, Stall: 300 * time.Millisecond})
	if backfill.KindOf(err) != backfill.KindVerify || !strings.Contains(err.Error(), "made no progress") || !strings.Contains(err.Error(), facts.QueryID) ||
		!strings.Contains(err.Error(), "30 records behind") || !strings.Contains(err.Error(), "committed 0 of") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 5*time.Second {
		t.Errorf("gave up after %s; the stall bound is 300ms", el)
	}
	var lag int64
	for _, p := range res.Partitions {
		lag += p.Lag
		if p.Committed != 0 || p.Target != target[p.Partition] {
			t.Errorf("partition lag %+v, target %v", p, target)
		}
	}
	if res.Status != "stalled" || res.Lag != 30 || lag != 30 || !strings.HasSuffix(res.Group, "query_"+facts.QueryID) {
		t.Fatalf("catch-up %+v", res)
	}
}

func TestCatchUpWaitsForALaggingQueryThatProgresses(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Rate = 100 })
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(150, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	target := w.produce(w.schemas, rows, nil)
	// 150 records at 100/s take 1.5s: longer than the stall bound, but
	// the lag keeps shrinking, so the barrier keeps waiting.
	res, err := c.CatchUp(context.Background(), facts, target, ksqldb.CatchUpOptions{Stage: "before verification", Poll: 50 * time.Millisecond, Stall: 500 * time.Millisecond})
	if err != nil || res.Status != "caught_up" || res.Seconds < 1 {
		t.Fatalf("catch-up %+v: %v", res, err)
	}
	if _, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast); err != nil {
		t.Fatal(err)
	}
}

func TestCatchUpStallsWhenTheQueryStartedAfterTheRecords(t *testing.T) {
	w := newWorld(t, 3)
	rows := rowsOf(10, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	target := w.produce(w.schemas, rows, nil)
	latest := w.ksql(nil) // auto.offset.reset=latest, the ksqlDB default: it never reads them
	c := client(t, latest.URL(), nil)
	_, err := c.CatchUp(context.Background(), preflight(t, c), target, ksqldb.CatchUpOptions{Poll: 20 * time.Millisecond, Stall: 300 * time.Millisecond})
	if backfill.KindOf(err) != backfill.KindVerify || !strings.Contains(err.Error(), "10 records behind") {
		t.Fatalf("latest: kind %v: %v", backfill.KindOf(err), err)
	}

	earliest := w.ksql(func(c *ksqlfake.Config) { c.OffsetReset = "earliest" })
	c = client(t, earliest.URL(), nil)
	facts := preflight(t, c)
	catchUp(t, c, facts, target)
	if _, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyWarnsWhenTheTableIsSmaller(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(nil)
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(40, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return 1000 + int64(i) })
	w.produce(w.schemas, rows, nil)
	cdc := []backfill.KeyValue{{Key: 3, Value: 5}, {Key: 4, Value: 6}, {Key: 5, Value: 7}} // orders BigQuery lacks
	w.produce(w.schemas, cdc, nil)
	waitConsumed(t, s, 43)
	catchUp(t, c, facts, w.endOffsets())
	v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
	if err != nil {
		t.Fatal(err)
	}
	if v.TableSmaller != 3 || v.Matched != 37 || len(v.Warnings) != 1 ||
		!strings.Contains(v.Warnings[0], "3 of 40") || !strings.Contains(v.Warnings[0], "ACCOUNT_ID=3: sent 1002, table 5") {
		t.Errorf("verification %+v", v)
	}
}

func TestVerifyRetriesRateLimitsAndServerErrors(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(nil)
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(20, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	catchUp(t, c, facts, w.produce(w.schemas, rows, nil))

	s.RateLimitNext(3)
	before := s.Requests("/query")
	opts := fast
	opts.BatchKeys, opts.UseQueryStream = 100, false
	if _, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), opts); err != nil {
		t.Fatal(err)
	}
	if got := s.Requests("/query") - before; got != 4 {
		t.Errorf("%d /query requests; want 3 rate-limited and 1 answered", got)
	}
	s.FailNext(2, 503)
	if _, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), opts); err != nil {
		t.Fatalf("503 not ready twice: %v", err)
	}

	impatient := client(t, s.URL(), func(c *ksqldb.Config) { c.Retries = 2 })
	s.FailNext(3, 500)
	_, err := impatient.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), opts)
	if backfill.KindOf(err) != backfill.KindUnavailable || !strings.Contains(err.Error(), "50000") {
		t.Fatalf("exhausted retries: kind %v, %v", backfill.KindOf(err), err)
	}
}

func TestVerifyUsesQueryOnOldServers(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Version = "0.23.1" })
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(10, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	catchUp(t, c, facts, w.produce(w.schemas, rows, nil))
	v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
	if err != nil || v.Endpoint != "/query" || s.Requests("/query-stream") != 0 {
		t.Fatalf("0.23: %+v %v (query-stream requests %d)", v, err, s.Requests("/query-stream"))
	}
	// A server that claims a newer version but refuses /query-stream over
	// HTTP/1.1 makes the client fall back.
	facts.ServerVersion = "0.29.0"
	v, err = c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
	if err != nil || v.Endpoint != "/query" || s.Requests("/query-stream") != 1 {
		t.Fatalf("fallback: %+v %v (query-stream requests %d)", v, err, s.Requests("/query-stream"))
	}
}
