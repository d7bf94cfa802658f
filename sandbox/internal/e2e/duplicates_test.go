package e2e

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// TestDuplicateReportCountsWhatTheBrokerStoredTwice injects, while the
// job produces, a duplicated batch: five of the job's records written a
// second time, with its run header, as a broker storing a batch twice
// (librdkafka#4953) holds them. The report's duplicates section counts
// exactly the records a reader finds twice on the topic, names their
// keys, and warns that stream_min_order's query saw them; the run still
// succeeds, since table_min_order is right.
func TestDuplicateReportCountsWhatTheBrokerStoredTwice(t *testing.T) {
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3, KsqlOtherReaders: []string{"CSAS_STREAM_MIN_ORDER_5"}})
	keyID, err := s.Registry.Register(stack.Topic+"-key", stack.KeySchema)
	if err != nil {
		t.Fatal(err)
	}
	valueID, err := s.Registry.Register(stack.Topic+"-value", stack.ValueSchema)
	if err != nil {
		t.Fatal(err)
	}
	dupUsers := []int64{}
	for user := range s.Expected() {
		if len(dupUsers) < 5 {
			dupUsers = append(dupUsers, user)
		}
	}
	slices.Sort(dupUsers)
	inject, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.ListenAddrs()...), kgo.DefaultProduceTopic(stack.Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer inject.Close()
	injected := make(chan error, 1)
	var requests atomic.Int64
	c := s.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(20 * time.Millisecond) // many small requests, so that the copy lands among them
		if requests.Add(1) != 5 {
			return nil, nil, false
		}
		go func() { // kfake handles one request at a time: produce the copy outside this one
			var recs []*kgo.Record
			for _, u := range dupUsers {
				key := binary.AppendVarint([]byte{0, 0, 0, 0, byte(keyID)}, u)
				value := binary.AppendVarint([]byte{0, 0, 0, 0, byte(valueID), 2}, s.Expected()[u])
				recs = append(recs, &kgo.Record{Key: key, Value: value, Partition: murmur2.Partition(key, 3),
					Headers: []kgo.RecordHeader{{Key: kafka.RunHeader, Value: []byte("dup-test")}}})
			}
			injected <- inject.ProduceSync(context.Background(), recs...).FirstErr()
		}()
		return nil, nil, false
	})
	r := runJob(t, s, "--run-id=dup-test", "--kafka-properties=batch.num.messages=20", "--kafka-linger=1ms", "--pipeline-batch-size=20", "--pipeline-workers=1")
	if err := <-injected; err != nil {
		t.Fatal(err)
	}
	c.DropControl()
	rep := r.report
	if r.code != 0 || rep.RunID != "dup-test" || rep.Duplicates == nil {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, tail(r.stderr, 3000))
	}
	// What an outside reader finds twice.
	var twice []int64
	for k, n := range consumeKeys(t, s.Kafka.ListenAddrs(), stored(s.Kafka)) {
		if n > 1 {
			twice = append(twice, k)
		}
	}
	slices.Sort(twice)
	d := rep.Duplicates
	got := slices.Clone(d.Keys)
	slices.Sort(got)
	if d.Status != "checked" || d.Records != int64(len(twice)) || !slices.Equal(got, twice) || !slices.Equal(twice, dupUsers) || d.Foreign != 0 {
		t.Fatalf("duplicates %+v; the topic holds keys %v twice, injected %v", d, twice, dupUsers)
	}
	if !strings.Contains(d.Warning, "CSAS_STREAM_MIN_ORDER_5") || !strings.Contains(r.stderr, "DUPLICATE RECORDS REACHED OTHER QUERIES") {
		t.Fatalf("no loud warning naming the other query: %q\n%s", d.Warning, tail(r.stderr, 2000))
	}
	if rep.Verification == nil || rep.Verification.Status != "passed" {
		t.Fatalf("verification %+v", rep.Verification)
	}
}
