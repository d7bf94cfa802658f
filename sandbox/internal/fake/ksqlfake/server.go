// Package ksqlfake is an in-process double of the ksqlDB REST endpoints the
// backfill uses, for tests and sandboxes. Production code never imports it.
//
// It behaves like the first-order pipeline's stream_order_insert and
// table_min_order: a stream over a real Kafka topic (consumed with franz-go
// from the configured offset reset, latest by default), every record
// decoded with the schema its wire-format id names in the registry, if the
// record's subject holds that id (records it cannot decode are dropped and
// counted, as ksqlDB drops them), and a table holding MIN(value) per key
// per partition. A pull query for key K serializes K as ksqlDB does (wire
// format with ksqlDB's own key schema id under <topic>-key) and looks only in
// partition murmur2(bytes) % n, so a record on another partition is
// invisible, exactly as in ksqlDB.
//
// The table's query takes time as ksqlDB's does: a record is processed
// (and visible to pull queries) Lag after it was fetched, at most Rate
// records a second, and the query commits its position every
// CommitInterval; DESCRIBE <table> EXTENDED reports those committed
// offsets in queryOffsetSummaries, as ksqlDB reads them from the query's
// consumer group.
//
// With Config.CountColumn the table is the counting pipeline's
// table_first_order (MIN and COUNT(*) per key; k8s/ksql-migrations
// V000006); EXPLAIN reports Config.QueryProperties as the query's
// overridden properties. Server.StartPipeline runs either pipeline's
// stages after the stream over Kafka (the table's output topic, its
// record cache, the announcer, at-least-once or exactly-once, crashes):
// see Pipeline.
//
// It answers as one ksqlDB release (Config.Version, see Profile): which
// endpoints answer over which HTTP version, LIMIT and table scans, the
// shape of the pull-query rate limit, DESCRIBE's partitions and GET /info.
// With Config.TLS it serves https and offers HTTP/2 by ALPN.
//
// Endpoints: GET /info, POST /ksql (DESCRIBE, SHOW PROPERTIES and EXPLAIN), POST /query and POST
// /query-stream (SELECT * FROM <table> WHERE <key> IN (…), and table scans
// where the release allows them); anything
// else is a statement_error 40001. Errors use ksqlDB's JSON shapes and
// codes; every answer of /ksql and /query is application/json.
package ksqlfake

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Registry resolves schema ids, as the schema registry double does.
type Registry interface {
	// SchemaByID returns the schema text registered with id.
	SchemaByID(id int) (string, bool)
	// SubjectHolds reports whether a live version of subject has id.
	SubjectHolds(subject string, id int) bool
}

// Config describes the ksqlDB objects the double pretends to hold.
type Config struct {
	Brokers  []string // the Kafka cluster, e.g. a kfake cluster's ListenAddrs()
	Registry Registry // resolves the schema id of every record
	// RegistryURL is the registry's REST base URL; pull queries ask it for
	// GET /subjects/<topic>-key/versions/latest to serialize keys. Not
	// needed when KeySchemaID is set.
	RegistryURL string
	// KeySchemaID is the key schema id pull queries serialize keys with;
	// 0 registers the key column's bare primitive under <topic>-key, as
	// ksqlDB's serializer does. StreamKeySchemaID is the stream's
	// KEY_SCHEMA_ID property (0.24+): DESCRIBE's statement shows it and
	// it stands for KeySchemaID.
	KeySchemaID, StreamKeySchemaID int

	Topic string // the stream's topic; it must exist
	// Stream and Table are the names as ksqlDB stores them: created with
	// backquotes they keep their case (stream_order_insert), created
	// without they are upper-cased. Statements must name them accordingly.
	Stream, Table string // defaults stream_order_insert, table_min_order
	TableTopic    string // default TABLE.MIN_ORDER
	KeyColumn     string // default ACCOUNT_ID (stream and table key)
	ValueColumn   string // default ORDER_ID
	MinColumn     string // the table's aggregate column; default MIN_<ValueColumn>
	// CountColumn, when set, makes the table the counting pipeline's
	// (V000006: MIN(order_id) and COUNT(*) AS order_count): DESCRIBE, the
	// query's statement and pull queries carry this BIGINT column after
	// MinColumn. Empty: the join pipeline's table, MIN only.
	CountColumn string
	// QueryProperties are the table query's overridden properties, the
	// SET statements it was created under, as EXPLAIN reports them in
	// overriddenProperties (QueryDescriptionFactory, confluentinc/ksql
	// v0.29.0: queryMetadata.getOverriddenProperties()).
	QueryProperties map[string]any
	// ServerProperties are further server settings SHOW PROPERTIES lists,
	// e.g. ksql.streams.statestore.cache.max.bytes; they replace a listed
	// setting of the same name.
	ServerProperties map[string]string
	KeyType          string // the key column's SQL type; default BIGINT
	KeyFormat        string // default AVRO
	ValueFormat      string // default AVRO
	// TableSource is the stream the table's persistent query reads;
	// default Stream. Another name leaves the table unfed by the topic.
	TableSource string
	NoTable     bool // the table does not exist
	// OtherReaders are ids of further persistent queries reading the
	// stream, as stream_min_order's CSAS does.
	OtherReaders []string
	QueryState   string // the table query's state; default RUNNING (others leave the table unfed)
	// OffsetReset is where the table's query starts reading: latest (the
	// ksqlDB default: only records written after New) or earliest.
	OffsetReset string
	Lag         time.Duration // how long after it is fetched a record is processed (visible)
	// Rate is how many records a second the table's query processes; 0 is
	// unlimited.
	Rate int
	// CommitInterval is how often the query commits its position; default
	// 2s, ksqlDB's commit.interval.ms.
	CommitInterval time.Duration
	// Paused starts the query stopped: it fetches but processes and
	// commits nothing until Resume, like a query that is stuck or
	// restoring.
	Paused bool
	// Version is the ksqlDB release the double answers as (default
	// 0.29.0): GET /info reports it and ProfileFor(Version) sets the
	// behaviours that differ between releases.
	Version string
	// Profile, when set, replaces ProfileFor(Version), e.g. to model a
	// server configured away from its release's defaults.
	Profile *Profile
	// TLS serves https with a self-signed certificate (CertPEM) and
	// offers HTTP/2 by ALPN, as ksqlDB's TLS listener does (Server.java
	// setUseAlpn(true), v0.17.0-ksqldb onwards).
	TLS bool
	// Username and Password, when set, are required as basic auth.
	Username, Password string

	// PersistentPrefix is ksql.persistent.prefix (default query_): the
	// table query's consumer group is _confluent-ksql-<service id> +
	// prefix + query id (QueryApplicationId.build, v0.15.0-ksqldb to
	// v0.29.0).
	PersistentPrefix string
	// GroupACLDenied models a server principal without DESCRIBE on the
	// table query's consumer group: listing its offsets fails with
	// KsqlGroupAuthorizationException "Authorization denied to Describe on
	// group: [<group>]" (KafkaConsumerGroupClientImpl.listConsumerGroupOffsets,
	// v0.15.0-ksqldb, v0.22.0-ksqldb), answered as Profile.OffsetErrorsAsWarnings says.
	GroupACLDenied bool
	// SharedRuntime is ksql.runtime.feature.shared.enabled=true (0.24 on,
	// default false, KsqlConfig.java v0.24.0 to v7.4.0): queries run in a
	// shared Kafka Streams runtime and commit under its application id
	// (QueryApplicationId.buildSharedRuntimeId), while DESCRIBE … EXTENDED
	// still reads the per-query group (QueryApplicationId.build in
	// ListSourceExecutor.queryOffsetSummaries), which then has no topics.
	SharedRuntime bool
	// LaggingStandby is ksql.query.pull.enable.standby.reads=true (default
	// false) with a standby of the table's store that has replicated
	// nothing since New, serving the pull queries, as HARouting does when
	// the active host fails the liveness filter: without
	// ksql.query.pull.enable.standby.reads the ActiveHostFilter admits the
	// active only (KsqlRestApplication.initializeRoutingFilterFactory,
	// v0.15.0-ksqldb, v0.29.0). A request whose
	// ksql.query.pull.max.allowed.offset.lag (streamsProperties on /query,
	// properties on /query-stream; PullQueryConfigRoutingOptions) is below
	// the standby's lag is served by the active instead, if LagReporting.
	LaggingStandby bool
	// LagReporting is ksql.lag.reporting.enable=true (default false,
	// KsqlRestConfig.java): without it MaximumLagFilter.create returns no
	// filter and a request's max.allowed.offset.lag is ignored.
	LagReporting bool
	// Repartition models a table query grouping by something other than
	// the stream's key column: SchemaKStream.groupBy repartitions unless
	// the GROUP BY is the key (repartitionNeeded, v0.15.0-ksqldb, v0.29.0),
	// so the records go through <application id>-Aggregate-GroupBy-repartition
	// and reach the table RepartitionLag after the query may commit their
	// source offsets. EXPLAIN's topology names the topic, and DESCRIBE …
	// EXTENDED lists it once the group has committed on it.
	Repartition    bool
	RepartitionLag time.Duration
}

func (c *Config) defaults() error {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Stream, "stream_order_insert")
	def(&c.Table, "table_min_order")
	def(&c.TableTopic, "TABLE.MIN_ORDER")
	def(&c.KeyColumn, "ACCOUNT_ID")
	def(&c.ValueColumn, "ORDER_ID")
	def(&c.MinColumn, "MIN_"+c.ValueColumn)
	def(&c.KeyType, "BIGINT")
	def(&c.KeyFormat, "AVRO")
	def(&c.ValueFormat, "AVRO")
	def(&c.TableSource, c.Stream)
	def(&c.QueryState, "RUNNING")
	def(&c.OffsetReset, "latest")
	def(&c.Version, "0.29.0")
	def(&c.PersistentPrefix, "query_")
	if c.Profile == nil {
		p, err := ProfileFor(c.Version)
		if err != nil {
			return err
		}
		c.Profile = &p
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = 2 * time.Second
	}
	switch {
	case len(c.Brokers) == 0:
		return errors.New("no brokers")
	case c.Registry == nil:
		return errors.New("no registry")
	case c.Topic == "":
		return errors.New("no topic")
	case c.KeySchemaID == 0 && c.StreamKeySchemaID != 0:
		c.KeySchemaID = c.StreamKeySchemaID
	}
	switch {
	case c.KeySchemaID == 0 && c.RegistryURL == "":
		return errors.New("set KeySchemaID or RegistryURL so that pull queries can serialize keys")
	case c.OffsetReset != "latest" && c.OffsetReset != "earliest":
		return fmt.Errorf("offset reset %q is not latest or earliest", c.OffsetReset)
	}
	return nil
}

// Server is a running ksqlDB double listening on 127.0.0.1.
type Server struct {
	cfg        Config
	prof       Profile
	url        string
	certPEM    []byte
	srv        *http.Server
	kc         *kgo.Client
	admin      *kgo.Client // lists the topic's offsets for DESCRIBE … EXTENDED
	partitions int32
	cancel     context.CancelFunc
	stopped    chan struct{} // closed when consume returns
	processing chan struct{} // closed when process returns
	closeOnce  sync.Once

	fetched, processed, dropped atomic.Int64

	mu        sync.Mutex
	pending   []pendingRecord // fetched, not yet processed (oldest first)
	paused    bool            // the query processes nothing
	position  map[int32]int64 // per partition: the offset after the last processed record
	committed map[int32]int64 // per partition: the last committed position
	// commitNeeded marks the partitions a record was processed on since
	// their last commit.
	commitNeeded map[int32]bool
	repart       repartitionState
	table        []map[int64]cell          // per partition: key -> MIN
	schemas      map[schemaRef]avro.Schema // parsed writer schemas registered under their subject
	requests     map[string]int            // by path
	rateN        int                       // pull queries still to answer 429
	failN        int                       // requests still to fail with failCode
	failCode     int                       // HTTP status for FailNext
	offsetsN     int                       // DESCRIBE … EXTENDED answers still to fail reading offsets
	queries      atomic.Int64
}

type pendingRecord struct {
	partition int32
	offset    int64
	key       int64
	value     cell
	decoded   bool // false: dropped when processed, as ksqlDB drops what it cannot deserialize
	control   bool // a transaction marker: it moves the position only
	visibleAt time.Time
}

// cell is one table value; null when every value seen was NULL. count
// is COUNT(*), the records aggregated.
type cell struct {
	value int64
	null  bool
	count int64
}

// New connects to Kafka, positions the table's query at the configured
// offset reset and starts serving.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("ksqldb fake: %w", err)
	}
	s := &Server{
		cfg:          cfg,
		prof:         *cfg.Profile,
		schemas:      map[schemaRef]avro.Schema{},
		requests:     map[string]int{},
		stopped:      make(chan struct{}),
		processing:   make(chan struct{}),
		paused:       cfg.Paused,
		position:     map[int32]int64{},
		committed:    map[int32]int64{},
		commitNeeded: map[int32]bool{},
		repart:       newRepartitionState(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.startConsumer(ctx); err != nil {
		cancel()
		if s.admin != nil {
			s.admin.Close()
		}
		return nil, fmt.Errorf("ksqldb fake: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("ksqldb fake: listen: %w", err)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	if !cfg.TLS {
		s.url = "http://" + ln.Addr().String()
		go func() { _ = s.srv.Serve(ln) }()
		return s, nil
	}
	cert, certPEM, err := selfSigned()
	if err != nil {
		ln.Close()
		s.Close()
		return nil, fmt.Errorf("ksqldb fake: %w", err)
	}
	s.certPEM = certPEM
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	s.url = "https://" + ln.Addr().String()
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// URL is the base URL, e.g. http://127.0.0.1:41234 (https with TLS).
func (s *Server) URL() string { return s.url }

// CertPEM is the server's self-signed certificate with TLS, else nil:
// trust it to reach the double over https.
func (s *Server) CertPEM() []byte { return s.certPEM }

// Profile is the behaviour of the release the double answers as.
func (s *Server) Profile() Profile { return s.prof }

// Close stops serving and consuming.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.stopped
		<-s.processing
		if s.kc != nil {
			s.kc.Close()
		}
		if s.admin != nil {
			s.admin.Close()
		}
		if s.srv != nil {
			_ = s.srv.Close()
		}
	})
}

// Partitions is the stream topic's partition count.
func (s *Server) Partitions() int { return int(s.partitions) }

// Fetched is the number of records the table's query has fetched.
func (s *Server) Fetched() int64 { return s.fetched.Load() }

// Processed is the number of records decoded and applied to the table,
// and so visible to pull queries.
func (s *Server) Processed() int64 { return s.processed.Load() }

// Dropped is the number of processed records the table's query could not
// decode.
func (s *Server) Dropped() int64 { return s.dropped.Load() }

// Pause stops the table's query: it keeps fetching but processes and
// commits nothing, as a stuck query does.
func (s *Server) Pause() { s.setPaused(true) }

// Resume lets a paused query process again.
func (s *Server) Resume() { s.setPaused(false) }

func (s *Server) setPaused(p bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = p
}

// Committed returns the query's committed position per partition; a
// partition it never committed is absent.
func (s *Server) Committed() map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.committed)
}

// Requests returns how many requests reached path (e.g. "/query-stream"),
// failed ones included.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// RateLimitNext makes the next n pull queries (/query, /query-stream)
// answer as ksqlDB's pull-query rate limit does on that release and
// endpoint (Profile.RateLimitQuery, RateLimitQueryStream).
func (s *Server) RateLimitNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateN = n
}

// FailNext makes the next n requests to any endpoint answer status with
// ksqlDB's error JSON (error_code status×100; 50302 "not ready" for 503).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, status
}

// FailOffsets makes the next n DESCRIBE … EXTENDED of the table fail to
// read the query's committed offsets from Kafka, as a broker outage does
// (KafkaConsumerGroupClientImpl.listConsumerGroupOffsets throws
// KafkaResponseGetFailedException "Failed to list Kafka consumer groups
// offsets", v0.15.0-ksqldb to v0.29.0); the release answers as
// Profile.OffsetErrorsAsWarnings says.
func (s *Server) FailOffsets(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offsetsN = n
}

// offsetsFault returns the message of the exception reading the query's
// offsets throws now, if any.
func (s *Server) offsetsFault() (string, bool) {
	if s.cfg.GroupACLDenied {
		return "Authorization denied to Describe on group: [" + s.queryGroup() + "]", true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offsetsN > 0 {
		s.offsetsN--
		return "Failed to list Kafka consumer groups offsets", true
	}
	return "", false
}

// fed reports whether the table's query reads the stream and runs.
func (s *Server) fed() bool {
	return !s.cfg.NoTable && s.cfg.TableSource == s.cfg.Stream && s.cfg.QueryState == "RUNNING"
}

// serve authenticates, injects faults and routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	var fail, limited int
	if s.failN > 0 {
		s.failN--
		fail = s.failCode
	} else if s.rateN > 0 && r.Method == http.MethodPost && (r.URL.Path == "/query" || r.URL.Path == "/query-stream") {
		s.rateN--
		limited = 1
	}
	s.mu.Unlock()

	if s.cfg.Username != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(s.cfg.Username)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(s.cfg.Password)) != 1 {
			writeError(w, http.StatusUnauthorized, "generic_error", 40100, "Unauthorized", "")
			return
		}
	}
	switch {
	case fail != 0:
		code, msg := fail*100, http.StatusText(fail)
		if fail == http.StatusServiceUnavailable {
			code, msg = 50302, "KSQL is not yet ready to serve requests."
		}
		writeError(w, fail, "generic_error", code, msg, "")
		return
	case limited != 0:
		s.rateLimited(w, r.URL.Path)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/info":
		s.handleInfo(w)
	case r.Method == http.MethodPost && r.URL.Path == "/ksql":
		s.handleKsql(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/query":
		s.handleQuery(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/query-stream":
		s.handleQueryStream(w, r)
	default:
		writeError(w, http.StatusNotFound, "generic_error", 40400, "Not found: "+r.Method+" "+r.URL.Path, "")
	}
}

// resolve returns the stored name an identifier token names: backquoted
// names are exact, bare ones upper-cased.
func resolve(t token) string {
	if t.quoted {
		return t.text
	}
	return strings.ToUpper(t.text)
}
