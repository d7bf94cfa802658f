package bigquery

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

// BigQuery sends Storage Read API responses of up to
// 128 MiB, and the official client raises gRPC's receive limit to
// 129 MiB; the plaintext connection kept gRPC's 4 MiB, so the sandbox's
// storage path failed above ~260,000 users, with a message calling it a
// quota problem.
func TestStorageReadsMultiMiBResponses(t *testing.T) {
	t.Parallel()
	const rows, width = 6000, 1024 // one response of about 6 MiB
	fake, err := bqreadfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "note", Type: arrow.BinaryTypes.String},
	}, nil))
	pad := strings.Repeat("x", width)
	for i := range rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(pad)
	}
	rec := b.NewRecord()
	b.Release()
	fake.AddTable(testTable, rec)
	rec.Release()
	fake.SetFaults(bqreadfake.Faults{ResponseRows: rows})

	src := New(Config{Project: "p", StorageEndpoint: fake.Addr(), StoragePlaintext: true, ReadStreams: 1, ReadSessionTimeout: 5 * time.Second}, nil)
	ctx := context.Background()
	rc, closeRC, err := src.storageClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRC()
	r, err := src.openSession(ctx, rc, testTable, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	vecs := make([]backfill.Vector, len(r.Columns()))
	for {
		got, err := r.NextColumns(vecs, 1000)
		n += got
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d rows: %v", n, err)
		}
	}
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
}
