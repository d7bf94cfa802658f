package bigquery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

const testTable = "projects/p/datasets/d/tables/result"

// storageFixture serves an orders table from the double and opens read
// sessions on it the way Source.openStorage does.
type storageFixture struct {
	t    *testing.T
	fake *bqreadfake.Server
	src  *Source
}

func newStorageFixture(t *testing.T, rows int, streams int) *storageFixture {
	t.Helper()
	fake, err := bqreadfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	rec := ordersRecord(rows, 4)
	fake.AddTable(testTable, rec)
	rec.Release()
	src := New(Config{Project: "p", StorageEndpoint: fake.Addr(), StoragePlaintext: true,
		ReadStreams: streams, ReadSessionTimeout: 5 * time.Second}, nil)
	src.backoff = &gax.Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}
	return &storageFixture{t: t, fake: fake, src: src}
}

func (f *storageFixture) open(restriction string) (*streamReader, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	f.t.Cleanup(cancel)
	rc, closeRC, err := f.src.storageClient(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.src.openSession(ctx, rc, testTable, nil, restriction)
	if err != nil {
		closeRC()
		return nil, err
	}
	r.closeFn = closeRC
	return r, nil
}

func TestStorageReaderReadsEveryStreamOnce(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10_000, 4)
	r, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if want := []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "min_order_id", Type: backfill.TypeInt64}, {Name: "shard", Type: backfill.TypeInt64}}; !equalColumns(r.Columns(), want) {
		t.Fatalf("columns %v, want %v", r.Columns(), want)
	}
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	checkOrders(t, got, usersUpTo(10_000))
	creates := f.fake.CreateRequests()
	if len(creates) != 1 {
		t.Fatalf("%d read sessions created, want 1", len(creates))
	}
	c := creates[0]
	if c.GetParent() != "projects/p" || c.GetMaxStreamCount() != 4 || c.GetReadSession().GetDataFormat() != storagepb.DataFormat_ARROW || c.GetReadSession().GetTable() != testTable {
		t.Fatalf("CreateReadSession request %v", c)
	}
	if n := len(f.fake.ReadRequests()); n != 4 {
		t.Fatalf("%d ReadRows calls, want one per stream (4)", n)
	}
	if r.Path() != PathStorage {
		t.Fatalf("path %q", r.Path())
	}
}

func TestStorageReaderResumesAStreamAtItsOffset(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10_000, 2)
	f.fake.SetFaults(bqreadfake.Faults{BreakAfter: 2 * bqreadfake.BatchRows, BreakCode: codes.Unavailable})
	r, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	checkOrders(t, got, usersUpTo(10_000))
	resumed := 0
	for _, req := range f.fake.ReadRequests() {
		if req.GetOffset() != 0 {
			if req.GetOffset() != 2*bqreadfake.BatchRows {
				t.Errorf("resumed %s at offset %d, want %d", req.GetReadStream(), req.GetOffset(), 2*bqreadfake.BatchRows)
			}
			resumed++
		}
	}
	if resumed != 2 {
		t.Fatalf("%d streams resumed, want both", resumed)
	}
}

func TestStorageReaderFailsOnAStreamErrorThatRetryingCannotFix(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10_000, 2)
	f.fake.SetFaults(bqreadfake.Faults{BreakAfter: bqreadfake.BatchRows, BreakCode: codes.PermissionDenied})
	r, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = readAll(t, r)
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "readSessionUser") {
		t.Fatalf("got %v (kind %s), want a config error naming the role", err, backfill.KindOf(err))
	}
}

func TestStorageReaderReportsAShortStream(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10_000, 2)
	f.fake.SetFaults(bqreadfake.Faults{Truncate: 100})
	r, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.total, r.totalKnown = 10_000, true // as openStorage sets them from the table's numRows
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	// The reader ends cleanly short of TotalRows; Pipeline.Run turns that
	// into a KindSource failure (backfill's TestShortReadFailsWithSourceExit).
	if total, known := r.TotalRows(); !known || uint64(len(got)) != total-100 {
		t.Fatalf("read %d of %d (known %v), want 100 short", len(got), total, known)
	}
}

func TestStorageReaderReadsOneShardThroughTheRowRestriction(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10_000, 3)
	r, err := f.open("shard = 3")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, u := range usersUpTo(10_000) {
		if u%4 == 3 {
			want = append(want, u)
		}
	}
	checkOrders(t, got, want)
	if rr := f.fake.CreateRequests()[0].GetReadSession().GetReadOptions().GetRowRestriction(); rr != "shard = 3" {
		t.Fatalf("row restriction %q", rr)
	}
}

func TestStorageSessionPermissionDeniedNamesTheRole(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10, 1)
	f.fake.SetFaults(bqreadfake.Faults{CreateErr: status.Error(codes.PermissionDenied, "Permission denied: User does not have bigquery.readsessions.create permission for project p.")})
	_, err := f.open("")
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "roles/bigquery.readSessionUser") || !strings.Contains(err.Error(), "bigquery.read_api=rest") {
		t.Fatalf("got %v (kind %s)", err, backfill.KindOf(err))
	}
}

func TestStorageSessionDisabledAPISaysToEnableIt(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10, 1)
	f.fake.SetFaults(bqreadfake.Faults{CreateErr: status.Error(codes.PermissionDenied, "BigQuery Storage API has not been used in project p before or it is disabled. Enable it by visiting ...")})
	_, err := f.open("")
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "enable bigquerystorage.googleapis.com") {
		t.Fatalf("got %v (kind %s)", err, backfill.KindOf(err))
	}
}

func TestStorageSessionIsBoundedByReadSessionTimeout(t *testing.T) {
	t.Parallel()
	// A peer that accepts connections and never answers: an unreachable
	// endpoint, as a blackholed route would be.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	src := New(Config{Project: "p", StorageEndpoint: lis.Addr().String(), StoragePlaintext: true, ReadStreams: 1, ReadSessionTimeout: 300 * time.Millisecond}, nil)
	ctx := context.Background()
	rc, closeRC, err := src.storageClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRC()
	start := time.Now()
	_, err = src.openSession(ctx, rc, testTable, nil, "")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %s", took)
	}
	if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "bigquery.read_session_timeout=300ms") {
		t.Fatalf("got %v (kind %s)", err, backfill.KindOf(err))
	}
}

// framings returns a record's bytes as BigQuery frames them (the schema
// message alone; the batch message alone) and as the emulator does (a
// whole IPC stream for each).
func framings(t *testing.T, rec arrow.Record) (schemaMsg, batchMsg, stream []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stream = buf.Bytes()
	meta, _, err := splitMessage(stream)
	if err != nil {
		t.Fatal(err)
	}
	schemaLen := 8 + len(meta) // continuation, length, metadata; a schema has no body
	return stream[:schemaLen], stream[schemaLen : len(stream)-8], stream
}

// decodeAll reads canned responses through messages and the IPC reader,
// as a stream is read, returning the rows per record.
func decodeAll(t *testing.T, schema []byte, resps ...*storagepb.ReadRowsResponse) ([]int64, error) {
	t.Helper()
	dec, err := newDecoder(schema)
	if err != nil {
		t.Fatal(err)
	}
	msgs := newMessages(dec, func() (*storagepb.ReadRowsResponse, error) {
		if len(resps) == 0 {
			return nil, io.EOF
		}
		r := resps[0]
		resps = resps[1:]
		return r, nil
	})
	rdr, err := ipc.NewReaderFromMessageReader(msgs, ipc.WithSchema(dec.schema))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	var rows []int64
	for rdr.Next() {
		rows = append(rows, rdr.Record().NumRows())
		if got := rdr.Record().Column(0).(*array.Int64).Value(4); got != 5 {
			t.Fatalf("user %d in row 5", got)
		}
		msgs.pending -= rdr.Record().NumRows()
	}
	return rows, rdr.Err()
}

func response(payload []byte, rows int64) *storagepb.ReadRowsResponse {
	return &storagepb.ReadRowsResponse{RowCount: rows,
		Rows: &storagepb.ReadRowsResponse_ArrowRecordBatch{ArrowRecordBatch: &storagepb.ArrowRecordBatch{SerializedRecordBatch: payload}}}
}

func TestMessagesAcceptBothFramings(t *testing.T) {
	t.Parallel()
	rec := ordersRecord(5, 4)
	defer rec.Release()
	schemaMsg, batchMsg, stream := framings(t, rec)
	for name, tc := range map[string]struct{ schema, payload []byte }{
		"bigquery": {schemaMsg, batchMsg},
		"emulator": {stream, stream},
	} {
		// Two responses and a progress-only one between them.
		rows, err := decodeAll(t, tc.schema, response(tc.payload, 5), &storagepb.ReadRowsResponse{}, response(tc.payload, 5))
		if err != nil || len(rows) != 2 || rows[0] != 5 || rows[1] != 5 {
			t.Fatalf("%s: records of %v rows, %v", name, rows, err)
		}
	}
}

func TestMessagesRefuseRowCountsThatDoNotAddUp(t *testing.T) {
	t.Parallel()
	rec := ordersRecord(5, 4)
	defer rec.Release()
	schemaMsg, batchMsg, _ := framings(t, rec)
	if _, err := decodeAll(t, schemaMsg, response(batchMsg, 6), response(batchMsg, 5)); err == nil || !strings.Contains(err.Error(), "announced 1 rows more") {
		t.Fatalf("a response announcing 6 rows for 5: %v", err)
	}
	if _, err := decodeAll(t, schemaMsg, response(nil, 3)); err == nil || !strings.Contains(err.Error(), "carries no record batch") {
		t.Fatalf("a response announcing rows without a batch: %v", err)
	}
	if _, err := decodeAll(t, schemaMsg, response(batchMsg[:len(batchMsg)-9], 5)); err == nil {
		t.Fatal("a truncated batch decoded")
	}
}

func equalColumns(a, b []backfill.Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStorageReaderHandsOverColumns(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 10_000, 3)
	r, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var cr backfill.RowReader = r
	got := map[int64]int64{}
	vecs := make([]backfill.Vector, 3)
	for {
		n, err := cr.NextColumns(vecs, 300)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || n > 300 || len(vecs[0].Int64) != n || len(vecs[1].Int64) != n {
			t.Fatalf("a batch of %d rows with columns of %d and %d values", n, len(vecs[0].Int64), len(vecs[1].Int64))
		}
		for i := range n {
			u := vecs[0].Int64[i]
			if _, dup := got[u]; dup {
				t.Fatalf("user %d read twice", u)
			}
			got[u] = vecs[1].Int64[i]
			if len(vecs[1].Null) > 0 && vecs[1].Null[i] {
				got[u] = 0
			}
		}
	}
	checkOrders(t, got, usersUpTo(10_000))
}

// TestStorageReaderReusesBuffersSafely: decoded batches' buffers are
// reused, so every buffer must come back, and no value handed over may
// point into one: strings kept from earlier batches stay intact.
func TestStorageReaderReusesBuffersSafely(t *testing.T) {
	t.Parallel()
	const rows = 50_000
	fake, err := bqreadfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil))
	for i := range rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("user-%d", i))
	}
	rec := b.NewRecord()
	b.Release()
	fake.AddTable(testTable, rec)
	rec.Release()

	mem := memory.NewCheckedAllocator(&bufferPool{})
	src := New(Config{Project: "p", StorageEndpoint: fake.Addr(), StoragePlaintext: true, ReadStreams: 2, ReadSessionTimeout: 5 * time.Second}, nil)
	src.alloc = mem
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
	names := map[int64]string{}
	vecs := make([]backfill.Vector, 2)
	for {
		n, err := r.NextColumns(vecs, 700)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			names[vecs[0].Int64[i]] = vecs[1].String[i]
		}
	}
	r.Close()
	for i := range int64(rows) {
		if want := fmt.Sprintf("user-%d", i); names[i] != want {
			t.Fatalf("user %d's name is %q, want %q: a string points into a reused buffer", i, names[i], want)
		}
	}
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("%d bytes of decoded batches never released", n)
	}
}

func TestArrowColumnsMapBigQuerysArrowTypes(t *testing.T) {
	t.Parallel()
	got := arrowColumns(arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64}, {Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32}, {Name: "a", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)},
	}, nil))
	want := []backfill.Column{{Name: "i", Type: backfill.TypeInt64}, {Name: "s", Type: backfill.TypeString},
		{Name: "f", Type: backfill.TypeFloat64}, {Name: "b", Type: backfill.TypeBool}, {Name: "d", Type: "date32"},
		{Name: "a", Type: "list<item: int64, nullable>", Repeated: true}}
	if !equalColumns(got, want) {
		t.Fatalf("columns %v, want %v", got, want)
	}
}
