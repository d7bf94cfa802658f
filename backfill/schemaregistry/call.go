package schemaregistry

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/riferrei/srclient"

	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// failure is why the last attempt of a call failed.
type failure struct {
	status      int           // HTTP status of the answer; 0 when none arrived
	code        int           // the registry's error_code; 0 when the body had none
	msg         string        // the registry's message or the transport error, password removed
	certificate string        // why the server's certificate was refused (httpc.ExplainUntrusted); empty when it was not
	retry       bool          // another attempt may succeed (httpc.RetryableStatus, httpc.RetryableError)
	retryAfter  time.Duration // the server's Retry-After
	attempts    int
}

// retryable reports whether another attempt may succeed.
func (f *failure) retryable() bool { return f.retry }

// call runs f against a fresh srclient, retrying as the shared policy says
// (httpc: 429, 5xx and transport failures, with exponential backoff,
// jitter and the server's Retry-After). It returns promptly when ctx ends;
// the caller checks ctx.Err() first.
func call[T any](ctx context.Context, c *Client, f func(*srclient.SchemaRegistryClient) (T, error)) (T, *failure) {
	var (
		v  T
		fl *failure
	)
	attempts, _ := c.policy.Do(ctx, func(int) (time.Duration, bool, error) {
		v, fl = once(ctx, c, f)
		if fl == nil {
			return 0, false, nil
		}
		return fl.retryAfter, fl.retryable(), errFailed
	})
	if fl != nil {
		fl.attempts = attempts
	}
	return v, fl
}

// errFailed tells httpc.Policy.Do that an attempt failed; the failure
// itself says why.
var errFailed = errors.New("schema registry call failed")

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
	status, retryAfter := rt.last()
	fl := &failure{status: status, retryAfter: retryAfter}
	var se srclient.Error
	if errors.As(err, &se) {
		fl.code, fl.msg = se.Code, se.Message
	}
	if fl.msg == "" {
		fl.msg = err.Error()
	}
	fl.msg = httpc.Redact(fl.msg, c.pass)
	switch {
	case status != 0:
		fl.retry = httpc.RetryableStatus(status)
	case httpc.Untrusted(err):
		fl.certificate = httpc.Redact(httpc.ExplainUntrusted("schema_registry", err), c.pass)
	default:
		fl.retry = httpc.RetryableError(err)
	}
	return v, fl
}

// attemptTransport cancels requests when ctx ends and remembers the
// status and Retry-After of the last answer.
type attemptTransport struct {
	base http.RoundTripper
	ctx  context.Context

	mu         sync.Mutex
	status     int
	retryAfter time.Duration
	stops      []func()
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
		t.status, t.retryAfter = resp.StatusCode, httpc.RetryAfter(resp.Header.Get("Retry-After"))
		t.mu.Unlock()
	}
	return resp, err
}

// last returns the status and Retry-After of the last answer; 0 and 0 when
// none arrived.
func (t *attemptTransport) last() (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.retryAfter
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
