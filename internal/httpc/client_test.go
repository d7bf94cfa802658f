package httpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// secret is a password with characters every encoding changes.
const secret = `pa"ss:w/rd<&>`

// echoServer answers the first len(statuses) requests with those statuses
// and a JSON body echoing the password, as a careless proxy might; 429s
// carry Retry-After: 1. Then it answers 200 "ok".
func echoServer(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(statuses) {
			_, _ = io.WriteString(w, "ok")
			return
		}
		if statuses[i] == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(statuses[i])
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "user job, password " + secret + ", refused"})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// protocolError is an error answer of a protocol that says itself
// whether to retry.
type protocolError struct{ retry bool }

func (e *protocolError) Error() string   { return fmt.Sprintf("protocol error (retry %v)", e.retry) }
func (e *protocolError) Retryable() bool { return e.retry }

func failed(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Do returned %T %v, want an *Error", err, err)
	}
	return e
}

func TestDoCountsAttemptsAndHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv, n := echoServer(t, 503, 503, 503)
	c := &Client{HTTP: srv.Client(), Policy: Policy{Retries: 2, Base: time.Millisecond}, Secrets: []string{secret}}
	e := failed(t, c.Do(t.Context(), get(srv.URL)))
	if e.Attempts != 3 || n.Load() != 3 || e.Status != 503 || !e.Retryable {
		t.Fatalf("%+v after %d requests; want 1 + 2 retries of a retryable 503", e, n.Load())
	}

	srv, n = echoServer(t, 429)
	start := time.Now()
	if err := c.Do(t.Context(), get(srv.URL)); err != nil || n.Load() != 2 {
		t.Fatalf("%v after %d requests; want success on the second", err, n.Load())
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v; the server asked for Retry-After: 1", d)
	}
}

// The password the server echoes reaches neither the attempt, which reads
// the error answer's body, nor the error Do returns, nor a transport
// error's text (a URL holding it percent-encoded).
func TestDoRedactsThePassword(t *testing.T) {
	srv, _ := echoServer(t, http.StatusUnauthorized, http.StatusUnauthorized)
	c := &Client{HTTP: srv.Client(), Policy: Policy{Retries: 3, Base: time.Millisecond}, Secrets: []string{"", secret}}
	var read string
	err := c.Do(t.Context(), func(ctx context.Context, hc *http.Client) error {
		err := get(srv.URL)(ctx, hc)
		read = err.Error()
		return err
	})
	e := failed(t, err)
	if e.Attempts != 1 || e.Status != 401 || e.Retryable {
		t.Errorf("%+v; want one attempt, a 401 that is not retried", e)
	}
	for what, text := range map[string]string{"the body read": read, "the error": err.Error()} {
		if strings.Contains(text, "ss:w") || strings.Contains(text, "rd\\u003c") || !strings.Contains(text, "password "+Redacted+", refused") {
			t.Errorf("%s holds the password or not its place: %s", what, text)
		}
	}

	srv.Close() // nothing answers there now
	err = c.Do(t.Context(), get(srv.URL+"/?password="+url.QueryEscape(secret)))
	if e := failed(t, err); e.Status != 0 || !e.Retryable || e.Attempts != 4 || strings.Contains(err.Error(), url.QueryEscape(secret)) {
		t.Errorf("transport failure %+v: %v", e, err)
	}
}

// An error that is a Retryer decides, whatever the status; a failure to
// read a 2xx answer is retried when the answer was cut short, not when it
// was whole but not understood.
func TestDoClassifiesFailures(t *testing.T) {
	t.Parallel()
	srv, n := echoServer(t, 400, 400)
	c := &Client{HTTP: srv.Client(), Policy: Policy{Retries: 3, Base: time.Millisecond}}
	answer := func(retry bool) func(context.Context, *http.Client) error {
		return func(ctx context.Context, hc *http.Client) error {
			if err := get(srv.URL)(ctx, hc); err != nil {
				return fmt.Errorf("calling: %w", &protocolError{retry: retry})
			}
			return nil
		}
	}
	if err := c.Do(t.Context(), answer(true)); err != nil || n.Load() != 3 {
		t.Errorf("a 400 its protocol calls retryable: %v after %d requests, want success on the third", err, n.Load())
	}
	srv, n = echoServer(t, 503)
	if e := failed(t, c.Do(t.Context(), answer(false))); e.Attempts != 1 || e.Retryable || n.Load() != 1 {
		t.Errorf("a 503 its protocol calls final: %+v after %d requests", e, n.Load())
	}

	var cut atomic.Int32
	short := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut.Add(1) == 1 {
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "ten bytes.") // and the connection ends
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer short.Close()
	if err := c.Do(t.Context(), get(short.URL)); err != nil || cut.Load() != 2 {
		t.Errorf("an answer cut short: %v after %d requests, want success on the second", err, cut.Load())
	}
	garbled := func(ctx context.Context, hc *http.Client) error {
		if err := get(short.URL)(ctx, hc); err != nil {
			return err
		}
		return json.Unmarshal([]byte("ok"), new(any))
	}
	if e := failed(t, c.Do(t.Context(), garbled)); e.Attempts != 1 || e.Retryable || e.Status != 200 {
		t.Errorf("a whole answer not understood: %+v, want one attempt", e)
	}
}

// Each attempt has Timeout, reading the answer included; an attempt
// that fails before sending anything is neither retried nor wrapped.
func TestDoTimesEachAttemptAndReturnsItsOwnFailures(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // the body never comes
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), Policy: Policy{Retries: 1, Base: time.Millisecond}, Timeout: 100 * time.Millisecond}
	start := time.Now()
	if err := c.Do(t.Context(), get(srv.URL)); err != nil || n.Load() != 2 || time.Since(start) > 2*time.Second {
		t.Errorf("%v after %d requests and %v; want the stalled read timed out and retried", err, n.Load(), time.Since(start))
	}

	own := errors.New("building the request")
	calls := 0
	err := c.Do(t.Context(), func(context.Context, *http.Client) error { calls++; return own })
	if err != own || calls != 1 {
		t.Errorf("%v after %d calls; want the attempt's own error, once", err, calls)
	}
}
