package kafka

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A librdkafka destroy that never returns must not keep the job from
// writing its report: Close gives up after its bound and says so.
func TestCloseIsBoundedWhenLibrdkafkaHangs(t *testing.T) {
	var logs logBuffer
	p, err := New(testConfig([]string{unreachable}), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	destroy := p.destroy
	p.destroy = func() { <-release; destroy() }
	p.closeTimeout = 200 * time.Millisecond
	start := time.Now()
	p.Close()
	if el := time.Since(start); el < 200*time.Millisecond || el > 3*time.Second {
		t.Errorf("Close returned after %s; want its bound, 200ms", el)
	}
	if !strings.Contains(logs.String(), "did not close in time") {
		t.Errorf("Close did not say it abandoned the client: %q", logs.String())
	}
	close(release) // let the real destroy run before the test ends
	time.Sleep(100 * time.Millisecond)
}
