// Package bqreadfake is an in-process double of BigQuery's Storage Read API
// (gRPC google.cloud.bigquery.storage.v1.BigQueryRead) for tests and the
// bench. It serves tables added as Arrow records and frames them as
// BigQuery does, not as the goccy emulator does:
//
//   - ReadSession.arrow_schema.serialized_schema holds one IPC schema
//     message (storagepb ArrowSchema, arrow.proto);
//   - each ReadRowsResponse.arrow_record_batch.serialized_record_batch
//     holds one IPC record-batch message, with no schema and no
//     end-of-stream marker, and ReadRowsResponse.row_count its rows
//     (storagepb ReadRowsResponse, storage.proto);
//   - the schema is also set on a stream's first response only.
//
// The proto's comments at cloud.google.com/go/bigquery v1.86.2
// (storage/apiv1/storagepb) are the contract each behaviour cites.
package bqreadfake

import (
	"context"
	"fmt"
	"net"
	"sync"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server is a running double. Its fault settings may be changed while it
// serves.
type Server struct {
	storagepb.UnimplementedBigQueryReadServer

	grpc *grpc.Server
	lis  net.Listener

	mu       sync.Mutex
	tables   map[string]arrow.Record
	sessions map[string]*session
	streams  map[string]*stream
	faults   Faults
	creates  []*storagepb.CreateReadSessionRequest
	reads    []*storagepb.ReadRowsRequest
	next     int
}

// Faults are the failures the double injects.
type Faults struct {
	// CreateErr, if set, is CreateReadSession's answer (e.g.
	// status.Error(codes.PermissionDenied, ...)).
	CreateErr error
	// BreakAfter breaks each stream once, with BreakCode, after it has sent
	// at least this many rows in one ReadRows call; 0 never breaks.
	BreakAfter int64
	BreakCode  codes.Code
	// Truncate ends stream 0 this many rows early, cleanly: a short read.
	Truncate int64
	// FailReads makes the next this many ReadRows calls, of any stream,
	// fail with FailCode before sending a row. BigQuery answers a read of
	// an expired session (6 h) or of a table replaced since the session
	// was created with FailedPrecondition or NotFound.
	FailReads int
	FailCode  codes.Code
	// ResponseRows, if positive, is how many rows one ReadRowsResponse
	// holds instead of BatchRows: with wide rows, responses of several
	// MiB, as BigQuery sends (up to 128 MiB).
	ResponseRows int64
}

// BatchRows is how many rows the double puts in one ReadRowsResponse.
const BatchRows = 1024

// Start serves on a free 127.0.0.1 port, without TLS.
func Start() (*Server, error) { return StartWith() }

// StartWith serves on a free 127.0.0.1 port with the gRPC server options
// opts: grpc.Creds for TLS, as BigQuery serves (a client sends OAuth
// per-RPC credentials only over a secure transport), and interceptors
// that check them.
func StartWith(opts ...grpc.ServerOption) (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bqreadfake: listen: %w", err)
	}
	s := &Server{
		grpc: grpc.NewServer(opts...), lis: lis,
		tables: map[string]arrow.Record{}, sessions: map[string]*session{}, streams: map[string]*stream{},
	}
	storagepb.RegisterBigQueryReadServer(s.grpc, s)
	go s.grpc.Serve(lis) //nolint:errcheck // ends at Close
	return s, nil
}

// Addr is the host:port to dial (without TLS unless StartWith was given
// grpc.Creds).
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops the server.
func (s *Server) Close() { s.grpc.Stop() }

// AddTable serves rec as the table named
// "projects/P/datasets/D/tables/T". The double keeps a reference.
func (s *Server) AddTable(name string, rec arrow.Record) {
	rec.Retain()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.tables[name]; old != nil {
		old.Release()
	}
	s.tables[name] = rec
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// CreateRequests returns the CreateReadSession requests received so far.
func (s *Server) CreateRequests() []*storagepb.CreateReadSessionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*storagepb.CreateReadSessionRequest(nil), s.creates...)
}

// ReadRequests returns the ReadRows requests received so far.
func (s *Server) ReadRequests() []*storagepb.ReadRowsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*storagepb.ReadRowsRequest(nil), s.reads...)
}

func (s *Server) lookupStream(name string) (*stream, Faults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return nil, s.faults, status.Errorf(codes.NotFound, "read stream %s not found", name)
	}
	return st, s.faults, nil
}

var _ storagepb.BigQueryReadServer = (*Server)(nil)

func (s *Server) tableFor(ctx context.Context, name string) (arrow.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tables[name]
	if rec == nil {
		return nil, status.Errorf(codes.NotFound, "Not found: Table %s", name)
	}
	return rec, ctx.Err()
}
