package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestBrokerAddressWithCredentialsIsRefusedUnechoed: a password in a
// broker address (user:password@host:port) never reaches librdkafka, the
// log or an error: the producer refuses the address without echoing it.
func TestBrokerAddressWithCredentialsIsRefusedUnechoed(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{Brokers: []string{"127.0.0.1:1", "backfill:S3CRET@127.0.0.1:2"}, Topic: "STREAM.ORDER.INSERT"}
	p, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		p.Close()
		t.Fatalf("a broker address holding a password was accepted; the log says:\n%s", logs.String())
	}
	if strings.Contains(err.Error()+logs.String(), "S3CRET") || !strings.Contains(err.Error(), "127.0.0.1:2") {
		t.Fatalf("the refusal echoes the secret or does not name the address: %v\n%s", err, logs.String())
	}
}
