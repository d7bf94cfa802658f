package kafka

import (
	"testing"
	"time"
)

// TestLingerIsHonouredDownToZero: kafka.linger=0 (or a fraction of a
// millisecond) reaches librdkafka as given, instead of leaving
// librdkafka's 5 ms default in place.
func TestLingerIsHonouredDownToZero(t *testing.T) {
	for linger, want := range map[time.Duration]string{0: "0", 500 * time.Microsecond: "0.5", 20 * time.Millisecond: "20"} {
		cfg := Config{Brokers: []string{unreachable}, Topic: "STREAM.ORDER.INSERT", Linger: linger}
		m, err := cfg.producerConfig()
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(cfg, nil) // librdkafka accepts the value
		if err != nil {
			t.Fatalf("linger %s: %v", linger, err)
		}
		p.Close()
		if got, ok := m["linger.ms"]; !ok || got != want {
			t.Errorf("linger %s: linger.ms = %v (set: %v), want %v", linger, got, ok, want)
		}
	}
}
