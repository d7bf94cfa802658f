package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests here need no broker: they reach librdkafka with an address
// nobody listens on. The producer's tests against a Kafka-protocol broker
// (kfake) live in the sandbox module, sandbox/internal/component/kafka.

// unreachable is a broker address nobody listens on.
const unreachable = "127.0.0.1:1"

// testConfig is a producer configuration for topic on brokers.
func testConfig(brokers []string) Config {
	return Config{Brokers: brokers, Topic: "STREAM.ORDER.INSERT", Linger: 5 * time.Millisecond, MessageTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second}
}

// logBuffer collects a producer's logs so tests can check them for secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecret fails the test when s contains one of secrets.
func noSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Fatalf("%s contains a secret: %s", what, s)
		}
	}
}
