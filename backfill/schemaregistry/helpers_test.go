package schemaregistry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
)

const (
	topic    = "STREAM.ORDER.INSERT"
	keySubj  = topic + "-key"
	valSubj  = topic + "-value"
	otherVal = `{"type":"record","name":"Other","fields":[{"name":"X","type":"long"}]}`
)

// ksqlRegistry is a registry as ksqlDB ≤0.28 leaves it: key id 1 (v1),
// value id 2 (v1) and, after the first INSERT … VALUES, id 3 (v2).
func ksqlRegistry(t *testing.T) *srfake.Server {
	t.Helper()
	s := srfake.New()
	t.Cleanup(s.Close)
	register(t, s, keySubj, keyLong)
	register(t, s, valSubj, valueV1)
	register(t, s, valSubj, valueV2)
	return s
}

// newClient is a client as the job builds it, with config's default
// timeout unless the test sets one.
func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fetch(t *testing.T, cfg Config) (backfill.Schemas, error) {
	t.Helper()
	return newClient(t, cfg).Fetch(context.Background(), topic)
}

func mustFetch(t *testing.T, cfg Config) backfill.Schemas {
	t.Helper()
	got, err := fetch(t, cfg)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return got
}

func wantKind(t *testing.T, err error, k backfill.Kind, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got none", k)
	}
	if got := backfill.KindOf(err); got != k {
		t.Errorf("kind = %s, want %s (%v)", got, k, err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
