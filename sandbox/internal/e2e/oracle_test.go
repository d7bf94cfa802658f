package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// oracle checks the job's promise over a sequence of runs, sharing no code
// with the job: it reads the stream's topic with franz-go, decodes every
// record with goavro from the schema its wire-format id names in the
// registry, computes the expected minimum per user with SQL of its own
// against the BigQuery emulator, and partitions with the tests' own
// murmur2. It remembers every record it read, so records that retention
// removes later still count.
type oracle struct {
	s       *stack.Stack
	want    map[int64]int64   // user -> MIN(order_id), from its own query
	next    map[int32]int64   // per partition, the next offset to read
	history map[int64][]int64 // per user, the order ids sent, in offset order
	foreign map[int64]bool    // keys others wrote on purpose (not from BigQuery)
	codecs  map[int]*goavro.Codec
	records int
}

func newOracle(t *testing.T, s *stack.Stack) *oracle {
	t.Helper()
	o := &oracle{s: s, next: map[int32]int64{}, history: map[int64][]int64{}, foreign: map[int64]bool{}, codecs: map[int]*goavro.Codec{}}
	o.want = minOrdersBySQL(t, s)
	if len(o.want) == 0 {
		t.Fatal("the oracle's own query found no users")
	}
	return o
}

// minOrdersBySQL asks the emulator for MIN(order_id) per non-NULL user.
func minOrdersBySQL(t *testing.T, s *stack.Stack) map[int64]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := bigquery.NewClient(ctx, stack.Project, option.WithEndpoint(s.BigQueryURL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := c.Query("SELECT user_id AS u, MIN(order_id) AS m FROM `" + stack.Project + "." + stack.Dataset + "." + stack.Table +
		"` WHERE user_id IS NOT NULL GROUP BY user_id")
	it, err := q.Read(ctx)
	if err != nil {
		t.Fatalf("the oracle's query: %v", err)
	}
	out := map[int64]int64{}
	for {
		var row struct{ U, M int64 }
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("the oracle's query: %v", err)
		}
		out[row.U] = row.M
	}
}

// allowForeign marks keys that a sequence writes itself, outside the job.
func (o *oracle) allowForeign(keys ...int64) {
	for _, k := range keys {
		o.foreign[k] = true
	}
}

// sync reads every record written since the last sync.
func (o *oracle) sync(t *testing.T) {
	t.Helper()
	ends := map[int32]int64{}
	for _, p := range o.s.Kafka.PartitionInfos(stack.Topic) {
		if p.HighWatermark > o.next[p.Partition] {
			ends[p.Partition] = p.HighWatermark
		}
	}
	if len(ends) == 0 {
		return
	}
	at := map[int32]kgo.Offset{}
	for p := range ends {
		at[p] = kgo.NewOffset().At(o.next[p])
	}
	// Control records (transaction markers) are kept so that every offset
	// up to the high watermark is accounted for.
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.s.Kafka.ListenAddrs()...), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{stack.Topic: at}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(ends) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("oracle: reading the topic: partitions %v not read to their end", ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			o.next[r.Partition] = r.Offset + 1
			if end, ok := ends[r.Partition]; ok && r.Offset+1 >= end {
				delete(ends, r.Partition)
			}
			if !r.Attrs.IsControl() {
				o.record(t, r)
			}
		})
	}
}

// record decodes one record and checks its partition.
func (o *oracle) record(t *testing.T, r *kgo.Record) {
	t.Helper()
	key, err := o.decode(r.Key)
	if err != nil {
		t.Fatalf("oracle: partition %d offset %d: key: %v", r.Partition, r.Offset, err)
	}
	user, ok := key.(int64)
	if !ok {
		t.Fatalf("oracle: partition %d offset %d: key %v (%T) is not a long", r.Partition, r.Offset, key, key)
	}
	if want := murmur2.Partition(r.Key, o.s.Options.Partitions); r.Partition != want {
		t.Fatalf("oracle: user %d is on partition %d, murmur2 puts it on %d", user, r.Partition, want)
	}
	val, err := o.decode(r.Value)
	if err != nil {
		t.Fatalf("oracle: partition %d offset %d: value: %v", r.Partition, r.Offset, err)
	}
	rec, _ := val.(map[string]any)
	union, _ := rec["ORDER_ID"].(map[string]any)
	order, ok := union["long"].(int64)
	if !ok {
		t.Fatalf("oracle: user %d: value %v has no ORDER_ID long", user, val)
	}
	o.history[user] = append(o.history[user], order)
	o.records++
}

// decode decodes a Confluent wire-format Avro datum with goavro.
func (o *oracle) decode(b []byte) (any, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, fmt.Errorf("% x is not Confluent wire format", b)
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	codec, ok := o.codecs[id]
	if !ok {
		text, found := o.s.Registry.SchemaByID(id)
		if !found {
			return nil, fmt.Errorf("schema id %d is not registered", id)
		}
		var err error
		if codec, err = goavro.NewCodec(text); err != nil {
			return nil, fmt.Errorf("schema id %d: %w", id, err)
		}
		o.codecs[id] = codec
	}
	v, rest, err := codec.NativeFromBinary(b[5:])
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the datum", len(rest))
	}
	return v, err
}

// check reads what the topic gained and checks the promise so far:
//   - every record is on murmur2's partition and decodes (sync);
//   - no record repeats what the table already held: per user, each
//     order id sent is smaller than every one sent before it (a
//     re-sent minimum announces a first order again);
//   - no record carries a user BigQuery lacks, or less than its minimum;
//   - complete: every user's minimum is on the topic (when the
//     sequence has finished a run).
func (o *oracle) check(t *testing.T, complete bool) {
	t.Helper()
	o.sync(t)
	for user, sent := range o.history {
		if o.foreign[user] {
			continue
		}
		m, ok := o.want[user]
		if !ok {
			t.Fatalf("oracle: user %d is on the topic but not in BigQuery", user)
		}
		for i, v := range sent {
			if v < m {
				t.Fatalf("oracle: user %d was sent order %d, below its minimum %d", user, v, m)
			}
			if i > 0 && v >= sent[i-1] {
				t.Fatalf("oracle: user %d was sent %v: record %d repeats what the table held (a first order announced again)", user, sent, i+1)
			}
		}
	}
	if !complete {
		return
	}
	var missing []int64
	for user, m := range o.want {
		if sent := o.history[user]; len(sent) == 0 || sent[len(sent)-1] != m {
			missing = append(missing, user)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("oracle: %d of %d users lack their minimum on the topic (first: %v)", len(missing), len(o.want), missing[:min(5, len(missing))])
	}
}
