package httpc

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxErrorBody is the most of an error answer's body a client reads.
const maxErrorBody = 1 << 16

// Client calls one server under this package's rules. Do is its one
// method; a Client is safe for concurrent use once set up.
type Client struct {
	HTTP     *http.Client  // sends the requests (Transport gives its TLS); nil means http.DefaultClient
	Policy   Policy        // how often and when to retry
	Timeout  time.Duration // bounds each attempt, reading the answer included; none when not positive
	Settings string        // the client's settings prefix (e.g. "ksqldb"), named when a certificate is refused
	Secrets  []string      // removed from every error Do returns and from every error answer's body
}

// Retryer is an attempt's failure that knows whether another attempt may
// succeed: an error answer of the server's own protocol, for which Do asks
// Retryable instead of applying RetryableStatus.
type Retryer interface {
	Retryable() bool
}

// Error is why Do gave up: the last attempt's failure.
type Error struct {
	Err       error // the failure as the attempt returned it; its text may hold a secret, the Error's does not
	Status    int   // HTTP status of the last answer; 0 when none arrived
	Attempts  int   // attempts made
	Retryable bool  // another attempt might have succeeded: the retries were spent or ctx ended
	settings  string
	secrets   []string
}

// Error returns the failure's text with the Client's secrets removed; for
// a refused certificate, ExplainUntrusted's explanation.
func (e *Error) Error() string {
	text := e.Err.Error()
	if Untrusted(e.Err) {
		text = ExplainUntrusted(e.settings, e.Err)
	}
	return Redact(text, e.secrets...)
}

// Unwrap returns the attempt's failure, for errors.As and errors.Is.
func (e *Error) Unwrap() error { return e.Err }

// Do makes attempts until one succeeds, fails for good, the retries are
// spent or ctx ends, pausing Policy.Backoff between them. attempt gets a
// context that ends with ctx or after Timeout, and hc, an HTTP client that
// binds every request to that context (so that a client library without
// context support stops with it too), records the last answer's status
// and Retry-After, and hands an error answer on with the secrets removed
// from its body (at most 64 KiB of it). attempt reads the whole answer
// before returning.
//
// A failed attempt is retried when its error holds a Retryer that says so;
// otherwise when it is a transport failure (RetryableError), an error
// answer with a RetryableStatus, or a 2xx answer cut short (an unexpected
// EOF, a network error or the attempt's timeout). A certificate failure
// (Untrusted) is never retried.
//
// Do returns nil, an *Error, or attempt's own error when it failed before
// sending any request (building it). When ctx ends Do returns promptly;
// callers tell that case by ctx.Err().
func (c *Client) Do(ctx context.Context, attempt func(ctx context.Context, hc *http.Client) error) error {
	var (
		last *Error
		own  error
	)
	attempts, err := c.Policy.do(ctx, func(int) (time.Duration, bool, error) {
		if err := ctx.Err(); err != nil {
			own = err
			return 0, false, err
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if c.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.Timeout)
		}
		defer cancel()
		hc := http.DefaultClient
		if c.HTTP != nil {
			hc = c.HTTP
		}
		rt := &attemptTransport{base: hc.Transport, ctx: actx, secrets: c.Secrets}
		if rt.base == nil {
			rt.base = http.DefaultTransport
		}
		bound := *hc
		bound.Transport = rt
		err := attempt(actx, &bound)
		rt.release()
		if err == nil {
			return 0, false, nil
		}
		status, wait, sent := rt.last()
		if !sent {
			own = err
			return 0, false, err
		}
		last = c.failure(actx, err, status)
		return wait, last.Retryable, last
	})
	switch {
	case err == nil:
		return nil
	case own != nil:
		return own
	}
	last.Attempts = attempts
	return last
}

// failure classifies and redacts an attempt's failure.
func (c *Client) failure(actx context.Context, err error, status int) *Error {
	e := &Error{Err: err, Status: status, settings: c.Settings, secrets: c.Secrets}
	var (
		retryer Retryer
		netErr  net.Error
	)
	switch {
	case errors.As(err, &retryer):
		e.Retryable = retryer.Retryable()
	case Untrusted(err):
		// never retried: no retry makes a certificate trusted
	case status >= 200 && status <= 299:
		e.Retryable = actx.Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)
	case status != 0:
		e.Retryable = RetryableStatus(status)
	default:
		e.Retryable = RetryableError(err)
	}
	return e
}

// Transport returns a copy of http.DefaultTransport with Config's TLS
// configuration; prefix names the settings in errors.
func Transport(prefix, caFile string, insecureSkipVerify bool) (*http.Transport, error) {
	tc, err := Config(prefix, caFile, insecureSkipVerify)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return tr, nil
}

// attemptTransport is the transport of one attempt: it ties every request
// to the attempt's context, remembers the status and Retry-After of the
// last answer, and removes the secrets from error answers' bodies.
type attemptTransport struct {
	base    http.RoundTripper
	ctx     context.Context
	secrets []string

	mu         sync.Mutex
	sent       bool
	status     int
	retryAfter time.Duration
	stops      []func()
}

// RoundTrip sends r bound to both its own context and the attempt's.
func (t *attemptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	t.mu.Lock()
	t.sent = true
	t.stops = append(t.stops, func() { stop(); cancel(nil) })
	t.mu.Unlock()
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if resp == nil {
		return resp, err
	}
	t.mu.Lock()
	t.status, t.retryAfter = resp.StatusCode, RetryAfter(resp.Header.Get("Retry-After"))
	t.mu.Unlock()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		t.redactBody(resp)
	}
	return resp, err
}

// redactBody replaces an error answer's body by at most maxErrorBody bytes
// of it with the secrets removed.
func (t *attemptTransport) redactBody(resp *http.Response) {
	if strings.Join(t.secrets, "") == "" {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	text := Redact(string(raw), t.secrets...)
	body := io.Reader(strings.NewReader(text))
	resp.ContentLength = int64(len(text))
	if err != nil {
		body, resp.ContentLength = io.MultiReader(body, errReader{err}), -1
	}
	resp.Body = io.NopCloser(body)
	resp.Header.Del("Content-Length")
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// last returns the status and Retry-After of the last answer (0 and 0 when
// none arrived) and whether any request was sent.
func (t *attemptTransport) last() (status int, retryAfter time.Duration, sent bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.retryAfter, t.sent
}

// release frees the per-request contexts once the attempt has read the
// answers.
func (t *attemptTransport) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.stops {
		f()
	}
	t.stops = nil
}
