// Package ksqldb makes ksqlDB the judge of a backfill: before any write it
// checks through the REST API that the stream and table the job feeds are
// what the job assumes (Preflight), and after the produce it proves with
// pull queries that the table holds what was sent (Recorder and Verify).
package ksqldb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Config holds the ksqlDB connection settings.
type Config struct {
	URL      string // base URL, e.g. http://ksqldb:8088
	Username string // basic-auth user; empty sends no credentials
	Password string // secret: never in errors or logs
	// TLSCAFile is a PEM bundle trusted for the server certificate.
	TLSCAFile string
	// TLSInsecureSkipVerify turns off server certificate verification.
	TLSInsecureSkipVerify bool
	Timeout               time.Duration // per request, including reading the answer; must be positive
	// Retries is how often a request is retried after 429, 5xx or a
	// transport failure; 0 means none (see httpc for the policy).
	Retries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries; defaults httpc.DefaultBase and httpc.DefaultCap (200ms, 5s).
	MinBackoff, MaxBackoff time.Duration
	Stream                 string // the stream the job writes to (required)
	Table                  string // the table that aggregates it (required)
}

// String describes the configuration without the password.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = httpc.Redacted
	}
	return fmt.Sprintf("ksqldb.Config{URL:%s Username:%q Password:%s Stream:%q Table:%q}", httpc.RedactURL(c.URL, c.Password), c.Username, pw, c.Stream, c.Table)
}

// LogValue keeps the password out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", httpc.RedactURL(c.URL, c.Password)), slog.String("username", c.Username),
		slog.String("stream", c.Stream), slog.String("table", c.Table))
}

// Client talks to one ksqlDB server. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	user, pass string
	hc         httpc.Client // retries, per-request timeout, redaction of c.pass
	stream     string
	table      string
}

// New checks cfg and returns a client. Credentials embedded in the URL are
// moved out of it so that no error message can carry them.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, backfill.Errorf(backfill.KindConfig, "ksqlDB URL %q is not an http(s) URL", httpc.RedactURL(cfg.URL, cfg.Password))
	}
	user, pass := cfg.Username, cfg.Password
	if u.User != nil {
		if user == "" {
			user = u.User.Username()
			pass, _ = u.User.Password()
		}
		u.User = nil
	}
	// HTTP/1.1 only. ksqlDB's TLS listener offers HTTP/2 by ALPN, and from
	// 0.17 to 0.23 it answers POST /query over HTTP/2 with 405
	// (OldApiUtils.handleOldApiResponse, v0.22.0-ksqldb), while every
	// endpoint the job uses answers over HTTP/1.1 on every release
	// (/query-stream from 0.24, which newer() checks).
	caFile, skipVerify := "", false // the TLS settings only apply to an https URL
	if u.Scheme == "https" {
		caFile, skipVerify = cfg.TLSCAFile, cfg.TLSInsecureSkipVerify
	}
	tr, err := httpc.Transport("ksqldb", caFile, skipVerify)
	if err != nil {
		return nil, backfill.Errorf(backfill.KindConfig, "%w", err)
	}
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	c := &Client{
		base: u, user: user, pass: pass,
		hc: httpc.Client{
			HTTP:     &http.Client{Transport: tr},
			Policy:   httpc.Policy{Retries: cfg.Retries, Base: cfg.MinBackoff, Cap: cfg.MaxBackoff},
			Timeout:  cfg.Timeout,
			Settings: "ksqldb",
			Secrets:  []string{pass},
		},
		stream: cfg.Stream,
		table:  cfg.Table,
	}
	switch {
	case cfg.Timeout <= 0:
		return nil, backfill.Errorf(backfill.KindConfig, "ksqldb.timeout is %s; want a positive duration", cfg.Timeout)
	case cfg.Retries < 0:
		return nil, backfill.Errorf(backfill.KindConfig, "ksqldb.retries is %d; want 0 or more", cfg.Retries)
	case c.stream == "" || c.table == "":
		return nil, backfill.Errorf(backfill.KindConfig, "ksqldb.stream and ksqldb.table are required")
	}
	return c, nil
}

// URL returns the server's base URL without credentials.
func (c *Client) URL() string { return c.base.String() }

// APIError is an error answer of the ksqlDB REST API:
// {"@type":"statement_error","error_code":40001,"message":"…"}.
type APIError struct {
	Endpoint string `json:"-"`          // e.g. "POST /ksql"
	Status   int    `json:"-"`          // HTTP status; 0 for an error inside a 200 answer
	Type     string `json:"@type"`      // statement_error or generic_error
	Code     int    `json:"error_code"` // HTTP status × 100 (+n), e.g. 42900 for the pull-query rate limit
	Message  string `json:"message"`    // the server's explanation
	Text     string `json:"statementText,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ksqlDB %s:", e.Endpoint)
	if e.Status != 0 {
		fmt.Fprintf(&b, " HTTP %d", e.Status)
	}
	if e.Type != "" {
		fmt.Fprintf(&b, " %s", e.Type)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " %d", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", truncate(e.Message, 500))
	}
	return b.String()
}

// Retryable reports whether the server asked to be tried again: the
// shared policy's statuses (httpc.RetryableStatus: 429, 5xx), and ksqlDB's
// own codes for the same, which also come inside a 200 answer: a server
// error (50000, not ready 50302) or the pull-query rate limit. It is the
// httpc.Retryer that httpc.Client.Do asks.
func (e *APIError) Retryable() bool {
	if e.Status == http.StatusNotImplemented || e.Status == http.StatusHTTPVersionNotSupported {
		return false // retrying cannot help; /query-stream falls back to /query on these
	}
	if _, denied := deniedGroup(e.Message); denied {
		return false // a missing ACL, answered 500 from 0.16 on
	}
	return httpc.RetryableStatus(e.Status) || e.Code >= 50000 || e.rateLimited()
}

// rateLimited reports the pull-query rate limit. From 0.28.2 it is 429 /
// 42900 (KsqlRateLimitException); before, PullQueryExecutionUtil.java
// (v0.22.0-ksqldb) throws a plain KsqlException, answered 400 / 40000 like
// a bad statement, which only its message tells apart.
func (e *APIError) rateLimited() bool {
	return e.Code == 42900 || (e.Code == 40000 && strings.Contains(e.Message, "rate limit for pull queries"))
}

// classify gives an exhausted or final API error e its kind; failed is
// how httpc gave up on it, whose text has the password removed.
func classify(e *APIError, failed *httpc.Error) error {
	if group, denied := deniedGroup(e.Message); denied {
		return groupACLError(group, failed.Error())
	}
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Code/100 == 401 || e.Code/100 == 403:
		return backfill.Errorf(backfill.KindConfig, "%w: ksqlDB refused the credentials; check the ksqlDB username and password and the user's permissions", failed)
	case failed.Retryable:
		return backfill.Errorf(backfill.KindUnavailable, "%w (gave up after retrying)", failed)
	default:
		return backfill.Errorf(backfill.KindContract, "%w", failed)
	}
}

// isNotFound reports whether a statement failed because a named stream or
// table does not exist.
func isNotFound(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "could not find") || strings.Contains(m, "does not exist")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func orString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// ctxErr reports the end of the caller's context: a cancellation is an
// interruption, a deadline the server's unavailability.
func ctxErr(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return backfill.Errorf(backfill.KindUnavailable, "timed out while %s: %w", what, context.Cause(ctx))
	}
	return backfill.Errorf(backfill.KindInterrupted, "interrupted while %s: %w", what, context.Cause(ctx))
}
