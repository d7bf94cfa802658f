package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// helperEnv makes the test binary act as the supervised job (see
// TestMain): report, crash or wait for a signal.
const helperEnv = "ORDERMIN_BACKFILL_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "report-3":
		fmt.Println(`{"status":"failed","exit_code":3}`)
		os.Exit(3)
	case "segv":
		fmt.Fprintln(os.Stderr, "level=INFO msg=producing")
		_ = syscall.Kill(os.Getpid(), syscall.SIGSEGV) // as a fault in librdkafka's C code is delivered
		time.Sleep(10 * time.Second)
	case "go-fatal":
		fmt.Fprintln(os.Stderr, "level=INFO msg=producing")
		var mu sync.Mutex
		mu.Unlock() // a fatal error of Go's runtime, exit 2
	case "abort":
		_ = syscall.Kill(os.Getpid(), syscall.SIGABRT) // librdkafka's assert() aborts
		time.Sleep(10 * time.Second)
	case "drain":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		fmt.Fprintln(os.Stderr, "ready")
		<-ctx.Done()
		fmt.Println(`{"status":"interrupted","exit_code":130}`)
		os.Exit(130)
	}
	os.Exit(99)
}

func supervise(t *testing.T, ctx context.Context, helper string, env ...string) (int, backfill.Report, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Supervise(ctx, os.Args[0], []string{"run"}, append([]string{helperEnv + "=" + helper}, env...), &stdout, &stderr)
	var rep backfill.Report
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &rep); err != nil {
		t.Fatalf("%s: stdout is not one report (%v): %q\nstderr: %s", helper, err, stdout.String(), stderr.String())
	}
	return code, rep, stdout.String(), stderr.String()
}

// The job's own report and exit code pass through unchanged.
func TestSupervisePassesTheJobsReportThrough(t *testing.T) {
	code, rep, out, _ := supervise(t, context.Background(), "report-3")
	if code != 3 || rep.ExitCode != 3 || strings.Count(out, "\n") != 1 {
		t.Errorf("exit %d, report %+v, stdout %q", code, rep, out)
	}
}

// A crash that leaves no report gets one from the supervisor: exit 1
// (internal error, retried by the Job), never 2 (fix the configuration).
func TestSuperviseReportsACrashAsAnInternalError(t *testing.T) {
	for _, c := range []struct{ helper, want string }{
		{"segv", "SIGSEGV"},
		{"go-fatal", "fatal error: sync: unlock of unlocked mutex"},
		{"abort", "SIGABRT"},
	} {
		file := filepath.Join(t.TempDir(), "report.json")
		code, rep, _, stderr := supervise(t, context.Background(), c.helper, "BACKFILL_REPORT_FILE="+file)
		if code != 1 || rep.ExitCode != 1 || rep.Status != "failed" || !strings.Contains(rep.Error, "internal error") ||
			!strings.Contains(rep.Error, c.want) || !strings.Contains(rep.Error, "msg=producing") && c.helper != "abort" {
			t.Errorf("%s: exit %d, report %+v\nstderr: %s", c.helper, code, rep, tail(stderr))
		}
		raw, err := os.ReadFile(file)
		if err != nil || !bytes.Contains(raw, []byte(`"exit_code":1`)) {
			t.Errorf("%s: report file: %s %v", c.helper, raw, err)
		}
	}
}

// SIGTERM to the supervisor reaches the job, which drains and reports.
// The supervisor is cancelled once the job says it is ready, not after a
// fixed delay: a loaded machine can take longer to start the child.
func TestSuperviseForwardsTermination(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &onLine{want: "ready", do: cancel}
	code := Supervise(ctx, os.Args[0], []string{"run"}, []string{helperEnv + "=drain"}, &stdout, stderr)
	var rep backfill.Report
	_ = json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &rep)
	if code != 130 || rep.Status != "interrupted" {
		t.Errorf("exit %d, report %+v\nstderr: %s", code, rep, tail(stderr.String()))
	}
}

// onLine is a writer that calls do once when a write contains want.
type onLine struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	do   func()
	done bool
}

func (w *onLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		w.do()
	}
	return len(p), nil
}

func (w *onLine) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
