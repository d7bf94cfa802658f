package bigquery

import (
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqjobsfake"
)

func startJobs(t testing.TB, dst *bq.TableReference, rows uint64, schema *bq.TableSchema) *bqjobsfake.Server {
	t.Helper()
	s, err := bqjobsfake.Start(dst, rows, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// ordersRecord is n rows of (user_id, min_order_id, shard): user i+1 has
// order 1000*(i+1), and every 97th user a NULL order.
func ordersRecord(n int, shards int64) arrow.Record { return ordersRecordWith(n, shards, "shard") }

// ordersRecordWith names the shard column.
func ordersRecordWith(n int, shards int64, shardColumn string) arrow.Record {
	fields := []arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "min_order_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: shardColumn, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i := range int64(n) {
		b.Field(0).(*array.Int64Builder).Append(i + 1)
		if (i+1)%97 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.Int64Builder).Append(1000 * (i + 1))
		}
		b.Field(2).(*array.Int64Builder).Append((i + 1) % shards)
	}
	return b.NewRecord()
}

// readAll reads every row, returning order id per user (0 for NULL).
func readAll(t *testing.T, r backfill.RowReader) (map[int64]int64, error) {
	t.Helper()
	got := map[int64]int64{}
	vecs := make([]backfill.Vector, len(r.Columns()))
	for {
		n, err := r.NextColumns(vecs, 100)
		for i := range n {
			u := vecs[0].Int64[i]
			if _, dup := got[u]; dup {
				t.Fatalf("user %d read twice", u)
			}
			got[u] = 0
			if len(vecs[1].Null) <= i || !vecs[1].Null[i] {
				got[u] = vecs[1].Int64[i]
			}
		}
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

func checkOrders(t *testing.T, got map[int64]int64, users []int64) {
	t.Helper()
	if len(got) != len(users) {
		t.Fatalf("read %d users, want %d", len(got), len(users))
	}
	for _, u := range users {
		want := 1000 * u
		if u%97 == 0 {
			want = 0
		}
		if v, ok := got[u]; !ok || v != want {
			t.Fatalf("user %d: order %d (present %v), want %d", u, v, ok, want)
		}
	}
}

func usersUpTo(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}
