package httpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// get is an attempt as the clients make one: a GET of url whose answer
// is read whole, an error answer failing the attempt.
func get(url string) func(context.Context, *http.Client) error {
	return func(ctx context.Context, hc *http.Client) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
		}
		return err
	}
}

// do runs Client.Do with client and p, returning the attempts its
// *Error counts (0 on success) and the error.
func do(ctx context.Context, client *http.Client, p Policy, attempt func(context.Context, *http.Client) error) (int, error) {
	err := (&Client{HTTP: client, Policy: p, Settings: "ksqldb"}).Do(ctx, attempt)
	var failed *Error
	if errors.As(err, &failed) {
		return failed.Attempts, err
	}
	return 0, err
}

// server answers the first len(statuses) requests with those statuses
// (429 with Retry-After: 1) and then 200, counting requests.
func server(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			if statuses[i] == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			w.WriteHeader(statuses[i])
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

var fast = Policy{Retries: 5, Base: time.Millisecond, Cap: 2 * time.Millisecond}

func TestRetryAfterIsHonouredThenSuccess(t *testing.T) {
	t.Parallel()
	srv, n := server(t, http.StatusTooManyRequests)
	start := time.Now()
	_, err := do(context.Background(), srv.Client(), fast, get(srv.URL))
	if err != nil || n.Load() != 2 {
		t.Fatalf("%d requests: %v; want success on the second", n.Load(), err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v; the server asked for 1s (Retry-After), above the 2ms cap", d)
	}
}

func TestServerErrorsUpToTheRetryLimit(t *testing.T) {
	t.Parallel()
	srv, n := server(t, 503, 503, 503, 503, 503, 503, 503, 503)
	attempts, err := do(context.Background(), srv.Client(), Policy{Retries: 3, Base: time.Millisecond}, get(srv.URL))
	if err == nil || !strings.Contains(err.Error(), "503") || attempts != 4 || n.Load() != 4 {
		t.Fatalf("%d attempts, %d requests: %v; want 1 + 3 retries ending in the 503", attempts, n.Load(), err)
	}

	srv, n = server(t, 502, 500)
	if _, err := do(context.Background(), srv.Client(), fast, get(srv.URL)); err != nil || n.Load() != 3 {
		t.Fatalf("%d requests: %v; want success on the third", n.Load(), err)
	}

	srv, n = server(t, 503)
	if attempts, err := do(context.Background(), srv.Client(), Policy{}, get(srv.URL)); err == nil || attempts != 1 || n.Load() != 1 {
		t.Fatalf("retries 0: %d attempts, %d requests: %v; want one", attempts, n.Load(), err)
	}
}

func TestOther4xxAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404, 409, 501, 505} {
		srv, n := server(t, status)
		if attempts, err := do(context.Background(), srv.Client(), fast, get(srv.URL)); err == nil || attempts != 1 || n.Load() != 1 {
			t.Errorf("HTTP %d: %d attempts, %d requests: %v; want one failed attempt", status, attempts, n.Load(), err)
		}
	}
}

func TestTransportErrorsAreRetried(t *testing.T) {
	srv, _ := server(t)
	url := srv.URL
	srv.Close() // nothing answers there now
	attempts, err := do(context.Background(), http.DefaultClient, Policy{Retries: 2, Base: time.Millisecond}, get(url))
	if err == nil || attempts != 3 {
		t.Fatalf("%d attempts: %v; want 3 failed attempts", attempts, err)
	}
}

// A certificate no retry can make trusted: one attempt, and an
// explanation naming the setting to change.
func TestUntrustedCertificateIsExplainedAndNotRetried(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	tc, err := Config("ksqldb", "", false)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	attempts, err := do(context.Background(), client, fast, get(srv.URL))
	if !Untrusted(err) || attempts != 1 || n.Load() != 0 {
		t.Fatalf("%d attempts, %d requests: %v; want one attempt failing on the certificate", attempts, n.Load(), err)
	}
	if got := err.Error(); !strings.Contains(got, "ksqldb.tls_ca_file") || !strings.Contains(got, "does not trust") {
		t.Errorf("Do's error %q does not explain the certificate naming ksqldb.tls_ca_file", got)
	}

	// Trusted, but for other names: a CA file cannot help, the URL can.
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "registry.internal"}}}
	attempts, err = do(context.Background(), client, fast, get(srv.URL))
	if !Untrusted(err) || attempts != 1 {
		t.Fatalf("name mismatch: %d attempts: %v", attempts, err)
	}
	if got := ExplainUntrusted("schema_registry", err); !strings.Contains(got, `"registry.internal"`) || !strings.Contains(got, "schema_registry.url") {
		t.Errorf("name mismatch explained as %q", got)
	}

	expired := fmt.Errorf("Get: %w", x509.CertificateInvalidError{Reason: x509.Expired})
	if got := ExplainUntrusted("ksqldb", expired); !strings.Contains(got, "expired") || RetryableError(expired) {
		t.Errorf("expired explained as %q", got)
	}
}

func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	for attempt, want := range []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000} {
		want *= time.Millisecond
		for range 50 {
			if d := (Policy{}).Backoff(attempt, 0); d < want/2 || d > want {
				t.Fatalf("default Backoff(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	p := Policy{Base: 10 * time.Millisecond, Cap: 40 * time.Millisecond}
	for _, attempt := range []int{2, 3, 64, 1 << 30} {
		if d := p.Backoff(attempt, 0); d < 20*time.Millisecond || d > 40*time.Millisecond {
			t.Errorf("Backoff(%d) = %v, want within the cap's upper half", attempt, d)
		}
	}
	if d := (Policy{Base: time.Second, Cap: time.Millisecond}).Backoff(0, 0); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("a cap below the base: %v, want the base", d)
	}
	if d := p.Backoff(0, 3*time.Second); d != 3*time.Second {
		t.Errorf("Backoff ignores the server's wait: %v", d)
	}
	if d := p.Backoff(0, time.Hour); d != MaxRetryAfter {
		t.Errorf("Backoff does not cap the server's wait: %v", d)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]time.Duration{
		"": 0, "0": 0, "7": 7 * time.Second, " 7 ": 7 * time.Second, "-3": 0, "soon": 0,
		"100000": MaxRetryAfter, "99999999999999999": MaxRetryAfter,
		time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat): 0,
		time.Now().Add(time.Hour).UTC().Format(http.TimeFormat):  MaxRetryAfter,
	} {
		if got := RetryAfter(h); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	if got := RetryAfter(date); got < 28*time.Second || got > 30*time.Second {
		t.Errorf("RetryAfter(%q) = %v, want about 30s", date, got)
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{200: false, 400: false, 401: false, 403: false, 404: false, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true, 505: false, 599: true, 600: false} {
		if got := RetryableStatus(status); got != want {
			t.Errorf("RetryableStatus(%d) = %v", status, got)
		}
	}
	for err, want := range map[error]bool{
		nil:                              false,
		errors.New("connection refused"): true,
		fmt.Errorf("Get: %w", context.DeadlineExceeded):                      true,
		fmt.Errorf("Get: %w", context.Canceled):                              false,
		fmt.Errorf("Get: %w", x509.UnknownAuthorityError{}):                  false,
		&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}: false,
	} {
		if got := RetryableError(err); got != want {
			t.Errorf("RetryableError(%v) = %v", err, got)
		}
	}
}

// Do stops as soon as ctx ends, also in the middle of a pause.
func TestDoEndsWithTheContext(t *testing.T) {
	t.Parallel()
	srv, n := server(t, 503, 503, 503)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	attempts, err := do(ctx, srv.Client(), Policy{Retries: 5, Base: time.Hour}, get(srv.URL))
	if err == nil || attempts != 1 || n.Load() != 1 || time.Since(start) > 2*time.Second {
		t.Fatalf("%d attempts, %d requests after %v: %v", attempts, n.Load(), time.Since(start), err)
	}
}
