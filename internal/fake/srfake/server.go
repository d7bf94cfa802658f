// Package srfake is an in-process double of the Confluent Schema
// Registry REST API for tests and sandboxes. Production code never imports it.
//
// It keeps the registry's observable behaviour: global schema ids starting
// at 1, per-subject versions, id reuse for an identical schema under another
// subject, soft and permanent subject deletion, and the registry's status
// codes and error JSON. Only AVRO schemas are supported.
package srfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// contentType is what the registry answers with.
const contentType = "application/vnd.schemaregistry.v1+json"

// Server is a running fake registry listening on 127.0.0.1.
type Server struct {
	url     string
	srv     *http.Server
	handler http.Handler
	done    chan struct{}
	once    sync.Once

	mu         sync.Mutex
	ids        map[string]int // schema identity (see canonical) -> global id
	schemas    []string       // id-1 -> canonical schema text
	subjects   map[string]*subject
	failN      int
	failStatus int
	delay      time.Duration
	user, pass string
	auth       bool
	requests   int
}

type subject struct {
	versions []*version // ascending; soft-deleted ones stay until a permanent delete
}

type version struct {
	version, id int
	deleted     bool
}

// New starts a fake registry on a free port of 127.0.0.1.
func New() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("schemaregistry fake: listen: %v", err))
	}
	s := &Server{
		url:      "http://" + ln.Addr().String(),
		done:     make(chan struct{}),
		ids:      map[string]int{},
		subjects: map[string]*subject{},
	}
	s.handler = http.HandlerFunc(s.serve)
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// URL is the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Handler is the registry's HTTP handler, fault injection included.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the server; requests held by SetDelay end at once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.srv.Close()
	})
}

// FailNext makes the next n requests answer status with the registry's
// error JSON (error_code status*100+1, e.g. 50001 for 500).
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// SetDelay holds every request for d before answering it.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// RequireBasicAuth makes every request need these basic-auth credentials;
// others get 401 {"error_code":401,"message":"Unauthorized"}.
func (s *Server) RequireBasicAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass, s.auth = user, pass, true
}

// Requests is the number of HTTP requests received so far, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Register registers an AVRO schema under subject as POST
// /subjects/{subject}/versions does and returns its global id. Schema
// texts are compared after compacting their JSON whitespace.
func (s *Server) Register(subjectName, schema string) (id int, err error) {
	id, _, err = s.register(subjectName, schema)
	return id, err
}

// SchemaByID returns the schema text registered with id, as GET
// /schemas/ids/{id} does. Ids stay resolvable after subject deletion.
func (s *Server) SchemaByID(id int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > len(s.schemas) {
		return "", false
	}
	return s.schemas[id-1], true
}

// SubjectHolds reports whether a live (not soft-deleted) version of
// subject has id, as POST /subjects/{subject} finds it.
func (s *Server) SubjectHolds(subject string, id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.live(subject) {
		if v.id == id {
			return true
		}
	}
	return false
}

// errInvalidSchema marks a schema the registry would reject with 42201.
var errInvalidSchema = errors.New("invalid schema")

// canonical checks that schema is valid Avro and returns its compacted
// text, which the double stores and answers, and its identity: the
// parsed schema written back as JSON, with whitespace, key order and
// {"type":"long"} versus "long" normalized away but defaults and other
// properties (connect.name) kept. Schema Registry compares parsed Avro
// schemas the same way (AvroSchema's equals over the parsed schema), so
// `"long"` and `{"type":"long"}` are one schema with one id, while a value
// schema without connect.name is another.
func canonical(schema string) (text, identity string, err error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(schema)); err != nil {
		return "", "", fmt.Errorf("%w: %v", errInvalidSchema, err)
	}
	sc, err := avro.ParseWithCache(buf.String(), "", &avro.SchemaCache{})
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", errInvalidSchema, err)
	}
	id, err := json.Marshal(sc)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", errInvalidSchema, err)
	}
	return buf.String(), string(id), nil
}

// register returns the id and version of schema under subjectName,
// adding a version when the subject does not hold it yet.
func (s *Server) register(subjectName, schema string) (id, ver int, err error) {
	text, identity, err := canonical(schema)
	if err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subjects[subjectName]
	if sub == nil {
		sub = &subject{}
		s.subjects[subjectName] = sub
	}
	id, known := s.ids[identity]
	next := 1
	for _, v := range sub.versions {
		next = v.version + 1
		if known && !v.deleted && v.id == id {
			return id, v.version, nil
		}
	}
	if !known {
		s.schemas = append(s.schemas, text)
		id = len(s.schemas)
		s.ids[identity] = id
	}
	sub.versions = append(sub.versions, &version{version: next, id: id})
	return id, next, nil
}

// live returns the subject's versions that are not soft-deleted; nil when
// the subject does not exist for readers.
func (s *Server) live(name string) []*version {
	sub := s.subjects[name]
	if sub == nil {
		return nil
	}
	var out []*version
	for _, v := range sub.versions {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}
