package bqreadfake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The double frames rows as BigQuery does: the session holds the schema
// message alone (no end-of-stream marker); each response holds one bare
// record-batch message and its row count; the schema comes again with the
// first response only.
func TestFramingIsBigQuerys(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil))
	for i := range 3000 {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecord()
	b.Release()
	s.AddTable("projects/p/datasets/d/tables/t", rec)
	rec.Release()

	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := storagepb.NewBigQueryReadClient(conn)
	ctx := context.Background()
	sess, err := c.CreateReadSession(ctx, &storagepb.CreateReadSessionRequest{Parent: "projects/p", MaxStreamCount: 1,
		ReadSession: &storagepb.ReadSession{Table: "projects/p/datasets/d/tables/t", DataFormat: storagepb.DataFormat_ARROW}})
	if err != nil {
		t.Fatal(err)
	}
	schema := sess.GetArrowSchema().GetSerializedSchema()
	if m, err := ipc.NewMessageReader(bytes.NewReader(schema)).Message(); err != nil || m.Type() != ipc.MessageSchema {
		t.Fatalf("session schema: %v %v", m, err)
	}
	if bytes.HasSuffix(schema, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) {
		t.Fatal("the session's schema ends with an end-of-stream marker")
	}
	rows, err := c.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: sess.GetStreams()[0].GetName()})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := 0; ; i++ {
		resp, err := rows.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if (resp.GetArrowSchema() != nil) != (i == 0) {
			t.Fatalf("response %d carries the schema: %v", i, resp.GetArrowSchema() != nil)
		}
		payload := resp.GetArrowRecordBatch().GetSerializedRecordBatch()
		mr := ipc.NewMessageReader(bytes.NewReader(payload))
		m, err := mr.Message()
		if err != nil || m.Type() != ipc.MessageRecordBatch {
			t.Fatalf("response %d: first message %v, %v; want a bare record batch", i, m, err)
		}
		if _, err := mr.Message(); !errors.Is(err, io.EOF) {
			t.Fatalf("response %d holds more than one message: %v", i, err)
		}
		total += resp.GetRowCount()
	}
	if total != 3000 {
		t.Fatalf("row counts add up to %d, want 3000", total)
	}
}
