package httpc

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The backoff schedule's defaults and the longest Retry-After honoured.
const (
	DefaultBase   = 200 * time.Millisecond
	DefaultCap    = 5 * time.Second
	MaxRetryAfter = time.Minute
)

// Policy is a client's retry policy. Its zero value makes one attempt
// with the default schedule.
type Policy struct {
	Retries int           // retries after the first attempt; 0 (or less) means none
	Base    time.Duration // pause before the first retry; DefaultBase when not positive
	Cap     time.Duration // longest pause of the schedule; DefaultCap when not positive, Base when below it
}

// Backoff returns the pause before retry number attempt+1: Base doubled
// attempt times, at most Cap, with jitter in [d/2, d], and at least the
// server's retryAfter (itself capped at MaxRetryAfter).
func (p Policy) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	base, limit := p.Base, p.Cap
	if base <= 0 {
		base = DefaultBase
	}
	if limit <= 0 {
		limit = DefaultCap
	}
	limit = max(limit, base)
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	d = d/2 + rand.N(d/2+1)
	return max(d, min(retryAfter, MaxRetryAfter))
}

// do is Client.Do's loop: it makes attempts until one succeeds or fails
// for good. try makes attempt number attempt (0 first) and returns the
// server's Retry-After (0 when none), whether its failure may be retried
// and its error, nil on success. do pauses Backoff between attempts and
// stops when try succeeds, returns a failure that is not retryable, the
// retries are spent or ctx ends; it returns the number of attempts made
// and the last error, which is the last attempt's also when ctx ended.
func (p Policy) do(ctx context.Context, try func(attempt int) (retryAfter time.Duration, retryable bool, err error)) (attempts int, err error) {
	for attempt := 0; ; attempt++ {
		wait, retryable, err := try(attempt)
		if err == nil || !retryable || attempt >= p.Retries || ctx.Err() != nil {
			return attempt + 1, err
		}
		if Sleep(ctx, p.Backoff(attempt, wait)) != nil {
			return attempt + 1, err
		}
	}
}

// RetryableStatus reports whether an answer with this HTTP status may
// succeed when sent again: 429 and 5xx, except 501 Not Implemented and 505
// HTTP Version Not Supported.
func RetryableStatus(status int) bool {
	switch {
	case status == http.StatusNotImplemented || status == http.StatusHTTPVersionNotSupported:
		return false
	case status == http.StatusTooManyRequests:
		return true
	}
	return status >= 500 && status <= 599
}

// RetryableError reports whether a failure to get an answer (what
// http.Client.Do or reading the body returned) may be retried: any
// transport failure, a request's own timeout included, but not a TLS
// certificate failure and not a cancellation.
func RetryableError(err error) bool {
	return err != nil && !Untrusted(err) && !errors.Is(err, context.Canceled)
}

// RetryAfter parses a Retry-After header, in seconds or as an HTTP date,
// into a wait between 0 and MaxRetryAfter; 0 when absent or unreadable.
func RetryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		d = MaxRetryAfter
		if s < int64(MaxRetryAfter/time.Second) {
			d = time.Duration(s) * time.Second
		}
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// Sleep pauses for d or until ctx ends, then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}
