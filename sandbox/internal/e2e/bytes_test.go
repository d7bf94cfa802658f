package e2e

import (
	"encoding/binary"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// Every record on the topic, read by an independent client, is exactly
// what ksqlDB writes: magic byte, the registered schema ids, a bare long
// key, a KsqlDataSourceSchema value, on Java's murmur2 partition.
func TestRecordsAreByteCompatibleWithKsqlDB(t *testing.T) {
	const partitions = 6
	s := startStack(t, stack.Options{Users: 700, Partitions: partitions})
	r := runJob(t, s, "--ksqldb-verify=sample", "--ksqldb-sample-size=50")
	if r.code != 0 {
		t.Fatalf("exit %d: %s\n%s", r.code, r.report.Error, r.stderr)
	}
	valueSchema := avro.MustParse(stack.ValueSchema)
	want := s.Expected()
	seen := map[int64]bool{}
	eachRecord(t, s.Kafka.ListenAddrs(), int64(len(want)), func(rec *kgo.Record) {
		k, v := rec.Key, rec.Value
		if len(k) < 6 || k[0] != 0 || binary.BigEndian.Uint32(k[1:5]) != uint32(r.report.KeySchemaID) {
			t.Fatalf("key %x: want magic 0 and key schema id %d", k, r.report.KeySchemaID)
		}
		if len(v) < 6 || v[0] != 0 || binary.BigEndian.Uint32(v[1:5]) != uint32(r.report.ValueSchemaID) {
			t.Fatalf("value %x: want magic 0 and value schema id %d", v, r.report.ValueSchemaID)
		}
		user, n := binary.Varint(k[5:])
		if n != len(k)-5 {
			t.Fatalf("key %x is not one Avro long", k)
		}
		var value map[string]any
		if err := avro.Unmarshal(valueSchema, v[5:], &value); err != nil {
			t.Fatalf("value %x does not decode with ksqlDB's schema: %v", v, err)
		}
		if got, ok := value["ORDER_ID"].(int64); !ok || got != want[user] {
			t.Fatalf("user %d: ORDER_ID %v, want %d", user, value["ORDER_ID"], want[user])
		}
		if p := murmur2.Partition(k, partitions); rec.Partition != p {
			t.Fatalf("user %d on partition %d, Java's murmur2 says %d", user, rec.Partition, p)
		}
		if seen[user] {
			t.Fatalf("user %d written twice", user)
		}
		seen[user] = true
	})
	if len(seen) != len(want) {
		t.Fatalf("%d distinct users on the topic, want %d", len(seen), len(want))
	}
}
