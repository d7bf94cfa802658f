package ksqldb

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// These tests show the client following the retry policy it shares with
// the Schema Registry client (internal/httpc), against a bare
// httptest server.

const policySecret = "s3cret:p@ss/word"

// policyServer answers GET /info, failing the first len(fail) requests
// with those statuses; a failure's body echoes the password, as a careless
// proxy might.
func policyServer(t *testing.T, retryAfter string, fail ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(fail) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fail[i])
			_, _ = w.Write([]byte(`{"@type":"generic_error","error_code":` + strconv.Itoa(fail[i]*100) + `,"message":"refused job:` + policySecret + `"}`))
			return
		}
		_, _ = w.Write([]byte(`{"KsqlServerInfo":{"version":"0.29.0"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func policyClient(t *testing.T, url string, retries int) *Client {
	t.Helper()
	c, err := New(Config{URL: url, Username: "job", Password: policySecret, Retries: retries, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Timeout: 5 * time.Second, Stream: "stream_order_insert", Table: "table_min_order"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A 503 is retried, after the server's Retry-After rather than the
// client's (much shorter) backoff.
func TestSharedPolicyRetries503ThenSucceeds(t *testing.T) {
	t.Parallel()
	srv, n := policyServer(t, "1", http.StatusServiceUnavailable)
	start := time.Now()
	si, err := policyClient(t, srv.URL, 2).info(t.Context())
	if err != nil || si.Info.Version != "0.29.0" || n.Load() != 2 {
		t.Fatalf("info = %+v, %v after %d requests; want success on the second", si, err, n.Load())
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v; the server asked for Retry-After: 1", d)
	}
}

// retries: 0 is one attempt; the exhausted 503 is unavailability, without
// the password the answer echoed.
func TestSharedPolicyRetriesZeroIsOneAttempt(t *testing.T) {
	t.Parallel()
	srv, n := policyServer(t, "", http.StatusServiceUnavailable)
	_, err := policyClient(t, srv.URL, 0).info(t.Context())
	if backfill.KindOf(err) != backfill.KindUnavailable || n.Load() != 1 {
		t.Fatalf("kind %s after %d requests: %v; want one unavailable attempt", backfill.KindOf(err), n.Load(), err)
	}
	if strings.Contains(err.Error(), policySecret) {
		t.Errorf("the error holds the password: %v", err)
	}
}

// A 401 is not retried, and the password the answer echoed is redacted.
func TestSharedPolicyDoesNotRetry401AndRedacts(t *testing.T) {
	t.Parallel()
	srv, n := policyServer(t, "", http.StatusUnauthorized, http.StatusUnauthorized)
	_, err := policyClient(t, srv.URL, 3).info(t.Context())
	if backfill.KindOf(err) != backfill.KindConfig || n.Load() != 1 {
		t.Fatalf("kind %s after %d requests: %v; want one attempt and a config error", backfill.KindOf(err), n.Load(), err)
	}
	if strings.Contains(err.Error(), policySecret) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("the password is not redacted: %v", err)
	}
}
