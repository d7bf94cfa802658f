package bigquery

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

// A stream does not give up after a few attempts without progress: the
// official client retries Aborted, DeadlineExceeded, Internal and
// Unavailable without an attempt bound; here they are retried under a
// time budget.
func TestStorageStreamRetriesPastFiveAttempts(t *testing.T) {
	t.Parallel()
	for _, code := range []codes.Code{codes.Unavailable, codes.Internal, codes.Aborted, codes.DeadlineExceeded} {
		f := newStorageFixture(t, 5000, 1)
		f.fake.SetFaults(bqreadfake.Faults{FailReads: 8, FailCode: code})
		r, err := f.open("")
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		r.Close()
		if err != nil {
			t.Fatalf("%s 8 times: %v (kind %s)", code, err, backfill.KindOf(err))
		}
		checkOrders(t, got, usersUpTo(5000))
	}
}

// The budget bounds the retries: a stream that keeps failing without
// delivering a row ends the shard with exit 4, naming the setting.
func TestStorageStreamRetriesStopAtTheBudget(t *testing.T) {
	t.Parallel()
	f := newStorageFixture(t, 5000, 1)
	f.src.cfg.ReadRetryTimeout = 300 * time.Millisecond
	f.fake.SetFaults(bqreadfake.Faults{FailReads: 1 << 30, FailCode: codes.Unavailable})
	r, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	_, err = readAll(t, r)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("gave up after %s, want about the 300ms budget", took)
	}
	if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "bigquery.read_retry_timeout=300ms") {
		t.Fatalf("err %v (kind %s): want a source error naming bigquery.read_retry_timeout", err, backfill.KindOf(err))
	}
}

// An expired session or a replaced table mid-stream (FailedPrecondition,
// NotFound) was a configuration error, exit 2, which fails the Kubernetes
// Job: it is a retryable exit 4.
func TestAnExpiredSessionMidStreamIsRetryable(t *testing.T) {
	t.Parallel()
	for _, code := range []codes.Code{codes.FailedPrecondition, codes.NotFound} {
		f := newStorageFixture(t, 5000, 1)
		f.fake.SetFaults(bqreadfake.Faults{BreakAfter: bqreadfake.BatchRows, BreakCode: code})
		r, err := f.open("")
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(t, r)
		r.Close()
		if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "session") {
			t.Fatalf("%s mid-stream: err %v (kind %s), want a source error naming the session", code, err, backfill.KindOf(err))
		}
	}
}
