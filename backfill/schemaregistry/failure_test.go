package schemaregistry

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

func TestRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	s.FailNext(2, http.StatusInternalServerError)
	got := mustFetch(t, Config{URL: s.URL(), Retries: 2})
	if got.Key.ID != 1 || got.Value.ID != 3 {
		t.Errorf("Fetch = %+v", got)
	}
	if n := s.Requests(); n != 5 { // key: 2 failures + 1 success; ksqlDB's own key schema: 1; value: 1
		t.Errorf("requests = %d, want 5", n)
	}
}

func TestPersistentFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	s.FailNext(100, http.StatusServiceUnavailable)
	start := time.Now()
	_, err := fetch(t, Config{URL: s.URL(), Retries: 2})
	elapsed := time.Since(start)
	wantKind(t, err, backfill.KindUnavailable, s.URL(), "3 time(s)", "HTTP 503")
	if n := s.Requests(); n != 3 {
		t.Errorf("requests = %d, want 3 (1 + 2 retries)", n)
	}
	// Two backoffs of at most 200ms and 400ms.
	if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("gave up after %v, want within the retry budget (0.2s–0.6s plus requests)", elapsed)
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	for attempt, want := range []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000} {
		want *= time.Millisecond
		for range 50 {
			if d := (httpc.Policy{}).Backoff(attempt, 0); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := (httpc.Policy{}).Backoff(100, 0); d > httpc.DefaultCap {
		t.Errorf("backoff(100) = %v, above the cap", d)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	const pass = "pa55-w0rd-x"
	s := ksqlRegistry(t)
	s.RequireBasicAuth("backfill", pass)
	if got := mustFetch(t, Config{URL: s.URL(), Username: "backfill", Password: pass}); got.Value.ID != 3 {
		t.Errorf("Fetch = %+v", got)
	}
	withURLCreds := strings.Replace(s.URL(), "http://", "http://backfill:"+pass+"@", 1)
	if got := mustFetch(t, Config{URL: withURLCreds}); got.Key.ID != 1 {
		t.Errorf("Fetch with credentials in the URL = %+v", got)
	}

	before := s.Requests()
	_, err := fetch(t, Config{URL: withURLCreds, Username: "backfill", Password: "wrong-" + pass, Retries: 3})
	wantKind(t, err, backfill.KindConfig, "check schema_registry username/password", "401")
	if strings.Contains(err.Error(), pass) {
		t.Errorf("error leaks the password: %v", err)
	}
	if n := s.Requests() - before; n != 1 {
		t.Errorf("a 401 was retried: %d requests", n)
	}

	_, err = fetch(t, Config{URL: s.URL()})
	wantKind(t, err, backfill.KindConfig, "requires authentication")
}

func TestUnreachableNamesURLWithoutUserinfo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = fetch(t, Config{URL: "http://u:hunter22@" + addr, Retries: 1})
	wantKind(t, err, backfill.KindUnavailable, "http://"+addr, "2 time(s)")
	if strings.Contains(err.Error(), "hunter22") || strings.Contains(err.Error(), "u:") {
		t.Errorf("error leaks userinfo: %v", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	s.SetDelay(3 * time.Second)
	start := time.Now()
	_, err := fetch(t, Config{URL: s.URL(), Timeout: 100 * time.Millisecond})
	wantKind(t, err, backfill.KindUnavailable, s.URL())
	if d := time.Since(start); d > time.Second {
		t.Errorf("timeout of 100ms took %v", d)
	}
}

func TestContextEndsFetchPromptly(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	s.SetDelay(10 * time.Second)
	c := newClient(t, Config{URL: s.URL(), Timeout: 30 * time.Second, Retries: 5})

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Fetch(ctx, topic)
	wantKind(t, err, backfill.KindInterrupted)
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("cancel: err=%v after %v", err, time.Since(start))
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Fetch(ctx, topic)
	wantKind(t, err, backfill.KindUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("deadline: err=%v after %v", err, time.Since(start))
	}
}

func TestNotARegistry(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>not here</html>", http.StatusNotFound)
	}))
	defer ts.Close()
	_, err := fetch(t, Config{URL: ts.URL, Retries: 3})
	wantKind(t, err, backfill.KindConfig, "check schema_registry.url", "404")
}

func TestTLSCAFile(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()

	_, err := fetch(t, Config{URL: ts.URL, Retries: 2})
	wantKind(t, err, backfill.KindConfig, "tls_ca_file")

	ca := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(ca, block, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustFetch(t, Config{URL: ts.URL, TLSCAFile: ca}); got.Value.ID != 3 {
		t.Errorf("Fetch over TLS = %+v", got)
	}
	if got := mustFetch(t, Config{URL: ts.URL, TLSInsecureSkipVerify: true}); got.Key.ID != 1 {
		t.Errorf("Fetch with verification off = %+v", got)
	}
}

func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no url", Config{}, "schema_registry.url is empty"},
		{"not http", Config{URL: "ftp://registry:21"}, "not an http(s) URL"},
		{"bad url keeps password out", Config{URL: "http://u:topsecret@registry:80:80"}, "not a valid URL"},
		{"user without password", Config{URL: "http://r:8081", Username: "u"}, "set together"},
		{"negative retries", Config{URL: "http://r:8081", Retries: -1}, "schema_registry.retries"},
		{"word selector", Config{URL: "http://r:8081", KeySchema: "v3"}, "schema_registry.key_schema"},
		{"zero version", Config{URL: "http://r:8081", ValueSchema: "0"}, "schema_registry.value_schema"},
		{"bad id", Config{URL: "http://r:8081", ValueSchema: "id:x"}, "schema_registry.value_schema"},
		{"missing CA", Config{URL: "https://r:8081", TLSCAFile: "/nonexistent/ca.pem"}, "schema_registry.tls_ca_file"},
		{"zero timeout", Config{URL: "http://r:8081", Timeout: -1}, "schema_registry.timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Timeout == 0 {
				tc.cfg.Timeout = time.Second
			}
			_, err := New(tc.cfg)
			wantKind(t, err, backfill.KindConfig, tc.want)
			if err != nil && strings.Contains(err.Error(), "topsecret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}
