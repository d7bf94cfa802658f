package bqreadfake

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// session is one read session: its schema message and its streams.
type session struct {
	schemaMsg []byte
}

// stream is one of a session's streams: a slice of the session's rows.
type stream struct {
	index   int
	session *session
	rows    arrow.Record
	broken  bool
}

// maxStreams is the system limit on max_stream_count (storage.proto,
// CreateReadSessionRequest.max_stream_count: "a default system max limit
// of 1,000").
const maxStreams = 1000

// CreateReadSession implements BigQueryRead. The table's rows are filtered
// by the row restriction, projected onto the selected fields (in table
// order: stream.proto TableReadOptions.selected_fields) and split into
// contiguous ranges, one per stream.
func (s *Server) CreateReadSession(ctx context.Context, req *storagepb.CreateReadSessionRequest) (*storagepb.ReadSession, error) {
	s.mu.Lock()
	s.creates = append(s.creates, req)
	faults := s.faults
	s.mu.Unlock()
	if faults.CreateErr != nil {
		return nil, faults.CreateErr
	}
	if !strings.HasPrefix(req.GetParent(), "projects/") {
		return nil, status.Errorf(codes.InvalidArgument, "parent %q is not projects/{project_id}", req.GetParent())
	}
	rs := req.GetReadSession()
	if rs.GetDataFormat() != storagepb.DataFormat_ARROW {
		return nil, status.Errorf(codes.Unimplemented, "bqreadfake serves ARROW only, not %s", rs.GetDataFormat())
	}
	if req.GetMaxStreamCount() < 0 || req.GetMaxStreamCount() > maxStreams {
		return nil, status.Errorf(codes.InvalidArgument, "max_stream_count %d is not in [0, %d]", req.GetMaxStreamCount(), maxStreams)
	}
	table, err := s.tableFor(ctx, rs.GetTable())
	if err != nil {
		return nil, err
	}
	cols, err := selectFields(table.Schema(), rs.GetReadOptions().GetSelectedFields())
	if err != nil {
		return nil, err
	}
	rows, err := restrict(table, rs.GetReadOptions().GetRowRestriction())
	if err != nil {
		return nil, err
	}
	var rec arrow.Record
	if rows == nil && len(cols) == int(table.NumCols()) {
		rec = table // every row and column: served as added, without a copy
		rec.Retain()
	} else {
		rec = take(table, rows, cols)
	}
	defer rec.Release()
	schemaMsg, err := schemaMessage(rec.Schema())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "serializing the schema: %v", err)
	}

	// The number of streams "may be lower than the requested number"
	// (max_stream_count); zero lets the server choose, and at least one
	// stream is created (ReadSession.streams). The double gives no more
	// streams than batches, and one when the request leaves it open.
	n := int64(req.GetMaxStreamCount())
	if n == 0 {
		n = 1
	}
	n = max(1, min(n, (rec.NumRows()+BatchRows-1)/BatchRows))

	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	name := fmt.Sprintf("%s/locations/us/sessions/fake%d", req.GetParent(), s.next)
	sess := &session{schemaMsg: schemaMsg}
	out := &storagepb.ReadSession{
		Name:              name,
		ExpireTime:        timestamppb.New(time.Now().Add(6 * time.Hour)),
		DataFormat:        storagepb.DataFormat_ARROW,
		Schema:            &storagepb.ReadSession_ArrowSchema{ArrowSchema: &storagepb.ArrowSchema{SerializedSchema: schemaMsg}},
		Table:             rs.GetTable(),
		ReadOptions:       rs.GetReadOptions(),
		EstimatedRowCount: rec.NumRows(),
	}
	total := rec.NumRows()
	for i := range n {
		lo, hi := total*i/n, total*(i+1)/n
		st := &stream{index: int(i), session: sess, rows: rec.NewSlice(lo, hi)}
		streamName := fmt.Sprintf("%s/streams/s%d", name, i)
		s.streams[streamName] = st
		out.Streams = append(out.Streams, &storagepb.ReadStream{Name: streamName})
	}
	s.sessions[name] = sess
	return out, nil
}

// ReadRows implements BigQueryRead: it sends the stream's rows from the
// requested offset (storage.proto ReadRowsRequest.offset), BatchRows rows
// per response, the schema on the first response only.
func (s *Server) ReadRows(req *storagepb.ReadRowsRequest, srv storagepb.BigQueryRead_ReadRowsServer) error {
	s.mu.Lock()
	s.reads = append(s.reads, req)
	s.mu.Unlock()
	st, faults, err := s.lookupStream(req.GetReadStream())
	if err != nil {
		return err
	}
	if s.failRead() {
		return status.Errorf(faults.FailCode, "bqreadfake: ReadRows of %s failed (injected)", req.GetReadStream())
	}
	end := st.rows.NumRows()
	if st.index == 0 && faults.Truncate > 0 {
		end = max(0, end-faults.Truncate)
	}
	off := req.GetOffset()
	if off < 0 || off > st.rows.NumRows() {
		return status.Errorf(codes.OutOfRange, "offset %d is beyond the stream's %d rows", off, st.rows.NumRows())
	}
	var sent int64
	first := true
	for off < end {
		if err := srv.Context().Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		if faults.BreakAfter > 0 && sent >= faults.BreakAfter && s.breakOnce(st) {
			return status.Errorf(faults.BreakCode, "bqreadfake: stream %d broken after %d rows (injected)", st.index, sent)
		}
		per := int64(BatchRows)
		if faults.ResponseRows > 0 {
			per = faults.ResponseRows
		}
		hi := min(end, off+per)
		part := st.rows.NewSlice(off, hi)
		msg, err := batchMessage(part, st.session.schemaMsg)
		part.Release()
		if err != nil {
			return status.Errorf(codes.Internal, "serializing rows: %v", err)
		}
		resp := &storagepb.ReadRowsResponse{
			Rows:     &storagepb.ReadRowsResponse_ArrowRecordBatch{ArrowRecordBatch: &storagepb.ArrowRecordBatch{SerializedRecordBatch: msg}},
			RowCount: hi - off,
		}
		if first {
			resp.Schema = &storagepb.ReadRowsResponse_ArrowSchema{ArrowSchema: &storagepb.ArrowSchema{SerializedSchema: st.session.schemaMsg}}
			first = false
		}
		if err := srv.Send(resp); err != nil {
			return err
		}
		sent += hi - off
		off = hi
	}
	return nil
}

// failRead reports whether this ReadRows call fails, counting it down.
func (s *Server) failRead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.FailReads <= 0 {
		return false
	}
	s.faults.FailReads--
	return true
}

func (s *Server) breakOnce(st *stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.broken {
		return false
	}
	st.broken = true
	return true
}

// selectFields returns the indexes of the selected fields in table order;
// none selected means every field.
func selectFields(schema *arrow.Schema, selected []string) ([]int, error) {
	if len(selected) == 0 {
		out := make([]int, schema.NumFields())
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	want := map[string]bool{}
	for _, f := range selected {
		if len(schema.FieldIndices(f)) == 0 {
			return nil, status.Errorf(codes.InvalidArgument, "selected field %q is not in the table", f)
		}
		want[f] = true
	}
	var out []int
	for i, f := range schema.Fields() {
		if want[f.Name] {
			out = append(out, i)
		}
	}
	return out, nil
}

var equalsInt = regexp.MustCompile("^\\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\\s*=\\s*(-?[0-9]+)\\s*$")

// restrict returns the rows that satisfy the row restriction, or nil for
// every row when there is none. The double
// understands "column = integer" only, which is what the job sends;
// BigQuery accepts any non-aggregate SQL predicate (stream.proto
// TableReadOptions.row_restriction).
func restrict(rec arrow.Record, restriction string) ([]int64, error) {
	if strings.TrimSpace(restriction) == "" {
		return nil, nil
	}
	m := equalsInt.FindStringSubmatch(restriction)
	if m == nil {
		return nil, status.Errorf(codes.Unimplemented, "bqreadfake understands only \"column = integer\" row restrictions, not %q", restriction)
	}
	idx := rec.Schema().FieldIndices(m[1])
	if len(idx) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "row restriction %q: unrecognized name %s", restriction, m[1])
	}
	want, _ := strconv.ParseInt(m[2], 10, 64)
	col, ok := rec.Column(idx[0]).(interface {
		IsNull(int) bool
		Value(int) int64
	})
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "row restriction %q: column %s is not INT64", restriction, m[1])
	}
	rows := []int64{}
	for i := range rec.NumRows() {
		if !col.IsNull(int(i)) && col.Value(int(i)) == want {
			rows = append(rows, i)
		}
	}
	return rows, nil
}
