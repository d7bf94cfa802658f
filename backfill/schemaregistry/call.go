package schemaregistry

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/riferrei/srclient"

	"github.com/ordermin/ordermin-backfill/backfill/internal/httpc"
)

// Backoff between attempts: exponential from backoffBase, capped, with jitter.
const (
	backoffBase = 200 * time.Millisecond
	backoffCap  = 5 * time.Second
)

// failure is why the last attempt of a call failed.
type failure struct {
	status   int    // HTTP status of the answer; 0 when none arrived
	code     int    // the registry's error_code; 0 when the body had none
	msg      string // the registry's message or the transport error, password removed
	tlsErr   bool   // the server's certificate was not trusted
	attempts int
}

// retryable reports whether another attempt may succeed.
func (f *failure) retryable() bool {
	if f.status == 0 {
		return !f.tlsErr
	}
	return f.status == http.StatusTooManyRequests || f.status >= 500
}

// backoff returns the pause before retry number attempt+1: the exponential
// step with jitter in [step/2, step].
func backoff(attempt int) time.Duration {
	d := backoffCap
	if attempt < 10 {
		d = min(backoffBase<<attempt, backoffCap)
	}
	return d/2 + rand.N(d/2+1)
}

// call runs f against a fresh srclient with retries and backoff. It
// returns promptly when ctx ends; the caller checks ctx.Err() first.
func call[T any](ctx context.Context, c *Client, f func(*srclient.SchemaRegistryClient) (T, error)) (T, *failure) {
	for attempt := 0; ; attempt++ {
		v, fl := once(ctx, c, f)
		if fl == nil {
			return v, nil
		}
		fl.attempts = attempt + 1
		if ctx.Err() != nil || !fl.retryable() || attempt >= c.retries {
			return v, fl
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fl
		case <-t.C:
		}
	}
}

// once makes one attempt. srclient has no context support, so each attempt
// gets its own srclient whose transport ties every request to ctx and
// records the HTTP status; the http.Client timeout bounds each request.
func once[T any](ctx context.Context, c *Client, f func(*srclient.SchemaRegistryClient) (T, error)) (T, *failure) {
	rt := &attemptTransport{base: c.transport, ctx: ctx}
	defer rt.release()
	sr := srclient.NewSchemaRegistryClient(c.base, srclient.WithClient(&http.Client{Transport: rt, Timeout: c.timeout}))
	sr.CachingEnabled(false)
	sr.CodecCreationEnabled(false)
	sr.SetCredentials(c.user, c.pass)
	v, err := f(sr)
	if err == nil {
		return v, nil
	}
	fl := &failure{status: rt.status()}
	var se srclient.Error
	if errors.As(err, &se) {
		fl.code, fl.msg = se.Code, se.Message
	}
	if fl.msg == "" {
		fl.msg = err.Error()
	}
	fl.tlsErr = httpc.Untrusted(err)
	if c.pass != "" {
		fl.msg = strings.ReplaceAll(fl.msg, c.pass, "[redacted]")
	}
	return v, fl
}

// attemptTransport cancels requests when ctx ends and remembers the
// status of the last answer.
type attemptTransport struct {
	base http.RoundTripper
	ctx  context.Context

	mu    sync.Mutex
	last  int
	stops []func()
}

// RoundTrip sends r bound to both its own context (which carries the
// http.Client timeout) and the attempt's ctx.
func (t *attemptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	t.mu.Lock()
	t.stops = append(t.stops, func() { stop(); cancel(nil) })
	t.mu.Unlock()
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if resp != nil {
		t.mu.Lock()
		t.last = resp.StatusCode
		t.mu.Unlock()
	}
	return resp, err
}

func (t *attemptTransport) status() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// release frees the per-request contexts once srclient has read the bodies.
func (t *attemptTransport) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.stops {
		f()
	}
	t.stops = nil
}
