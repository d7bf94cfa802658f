package ksqldb

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// tlsServer serves /info over HTTPS with httptest's self-signed
// certificate and counts requests; caFile holds that certificate as PEM.
func tlsServer(t *testing.T) (srv *httptest.Server, caFile string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = w.Write([]byte(`{"KsqlServerInfo":{"version":"0.29.0"}}`))
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, requests
}

func TestTLSVerifiesByDefaultAndTrustsTheCAFile(t *testing.T) {
	t.Parallel()
	srv, ca, _ := tlsServer(t)
	fast := func(c Config) Config {
		c.MinBackoff, c.MaxBackoff, c.Retries, c.Timeout = time.Millisecond, time.Millisecond, 1, 5*time.Second
		c.Stream, c.Table = "stream_order_insert", "table_min_order"
		return c
	}

	c, err := New(fast(Config{URL: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.info(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate was accepted: %v", err)
	}
	for name, cfg := range map[string]Config{
		"CA file":     {URL: srv.URL, TLSCAFile: ca},
		"skip verify": {URL: srv.URL, TLSInsecureSkipVerify: true},
	} {
		c, err := New(fast(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if si, err := c.info(context.Background()); err != nil || si.Info.Version != "0.29.0" {
			t.Errorf("%s: %+v, %v", name, si, err)
		}
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{notPEM, "/nonexistent/ca.pem"} {
		if _, err := New(Config{URL: srv.URL, TLSCAFile: file}); backfill.KindOf(err) != backfill.KindConfig {
			t.Errorf("CA file %s: %v, want a config error", file, err)
		}
	}
}

// TestUntrustedCertificateIsAConfigError: retrying cannot make a
// certificate trusted, so the client should neither retry it nor call the
// server unreachable (exit 7, which Kubernetes retries); the registry client
// already answers this case with a config error naming its tls_ca_file.
func TestUntrustedCertificateIsAConfigError(t *testing.T) {
	t.Parallel()
	srv, _, requests := tlsServer(t)
	c, err := New(Config{URL: srv.URL, Retries: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Timeout: 5 * time.Second, Stream: "stream_order_insert", Table: "table_min_order"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.info(context.Background())
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "ksqldb.tls_ca_file") {
		t.Errorf("kind %s: %v; want a config error naming ksqldb.tls_ca_file", backfill.KindOf(err), err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the handler", n)
	}
}

// TestVerifyStatementErrorIsNotRetried: a pull query ksqlDB rejects as a
// statement_error (400) fails verification at once with a contract error;
// retrying cannot help.
func TestVerifyStatementErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"@type":"statement_error","error_code":40001,"message":"Line: 1, Col: 15: Table 'T' does not exist.","statementText":"SELECT * FROM T;"}`))
	}), nil)
	rec, _ := NewRecorder(ModeFull, 0, 1)
	rec.ObserveBatch([]backfill.KeyValue{{Key: 1, Value: 10}, {Key: 2, Value: 20}})
	facts := Facts{ServerVersion: "0.29.0", Table: "T", TableKeyColumn: "K", TableValueColumn: "V"}
	v, err := c.Verify(context.Background(), facts, rec, VerifyOptions{Recheck: time.Millisecond, UseQueryStream: true})
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "40001") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("kind %s: %v", backfill.KindOf(err), err)
	}
	if v.Status != "failed" || calls.Load() != 1 {
		t.Fatalf("verification %+v after %d calls; want one call and status failed", v, calls.Load())
	}
}
