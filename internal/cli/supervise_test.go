package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
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
	case "supervise": // a parent as main runs it, supervising the helper named in helperChildEnv
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		env := append(os.Environ(), helperEnv+"="+os.Getenv(helperChildEnv))
		os.Exit(Supervise(ctx, os.Args[0], []string{"run"}, env, os.Stdout, os.Stderr))
	case "produce": // a job as main runs it: it produces until SIGTERM, then drains
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		produce(ctx, os.Getenv(helperDirEnv))
	case "produce-watched": // the same, watching its parent as main does
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		ctx, cancel := WatchParent(ctx, os.Getenv)
		defer cancel()
		produce(ctx, os.Getenv(helperDirEnv))
	case "oom": // what the kernel's OOM killer does to the job
		fmt.Fprintln(os.Stderr, `{"level":"INFO","msg":"producing"}`)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(10 * time.Second)
	case "progress-oom": // the same after passing its progress to the parent
		if fd, err := strconv.Atoi(os.Getenv("ORDERMIN_BACKFILL_PROGRESS_FD")); err == nil {
			f := os.NewFile(uintptr(fd), "progress")
			fmt.Fprintln(f, `{"rows_read":140000,"records_encoded":139000,"records_produced":139000,"records_acked":138065,"records_failed":0,"bytes":2780000,"rows_skipped":{"null_key":1000,"null_value":0}}`)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
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

// helperChildEnv names the helper the "supervise" helper supervises;
// helperDirEnv the directory where "produce" keeps its pid and records.
const (
	helperChildEnv = "ORDERMIN_BACKFILL_TEST_CHILD"
	helperDirEnv   = "ORDERMIN_BACKFILL_TEST_DIR"
)

// produce writes its pid to dir/pid, then a record a millisecond to
// dir/records until ctx ends, then dir/stopped, and exits 130.
func produce(ctx context.Context, dir string) {
	_ = os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	records, err := os.Create(filepath.Join(dir, "records"))
	if err != nil {
		os.Exit(98)
	}
	for ctx.Err() == nil {
		_, _ = records.WriteString("r\n")
		time.Sleep(time.Millisecond)
	}
	_ = os.WriteFile(filepath.Join(dir, "stopped"), nil, 0o644)
	os.Exit(130)
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

// TestTheJobDiesWithItsParent: a parent killed with SIGKILL (a VM, cron,
// timeout -s KILL) cannot pass SIGTERM on; the job must still stop
// producing, and soon.
func TestTheJobDiesWithItsParent(t *testing.T) {
	dir := t.TempDir()
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), helperEnv+"=supervise", helperChildEnv+"=produce", helperDirEnv+"="+dir)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(20 * time.Second); pid == 0 || size(dir, "records") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = parent.Process.Kill()
			t.Fatal("the job's process did not start producing within 20s")
		}
		raw, _ := os.ReadFile(filepath.Join(dir, "pid"))
		pid, _ = strconv.Atoi(string(raw))
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }() // the job, if it outlived the test
	_ = parent.Process.Signal(syscall.SIGKILL)
	_ = parent.Wait()
	killed := size(dir, "records")
	for deadline := time.Now().Add(5 * time.Second); size(dir, "stopped") < 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the job's process (pid %d) still produces 5s after its parent was killed: %d records since", pid, (size(dir, "records")-killed)/2)
		}
	}
	after := size(dir, "records")
	time.Sleep(200 * time.Millisecond)
	if size(dir, "records") != after {
		t.Fatal("the job's process produced after it stopped")
	}
}

// size is the size of dir/name, or -1 if it does not exist.
func size(dir, name string) int64 {
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// TestAKilledJobIsReportedAsKilledWithUnknownCounters: a job killed with
// SIGKILL (what an OOM kill looks like) is reported as such, not as a
// crash in librdkafka, and counters it never reported are unknown (null),
// not 0.
func TestAKilledJobIsReportedAsKilledWithUnknownCounters(t *testing.T) {
	code, rep, out, stderr := supervise(t, context.Background(), "oom")
	if code != 1 || !strings.Contains(rep.Error, "SIGKILL") || !strings.Contains(rep.Error, "OOM") || !strings.Contains(rep.Error, "memory limit") ||
		strings.Contains(rep.Error, "librdkafka") {
		t.Errorf("exit %d, error %q\nstderr: %s", code, rep.Error, tail(stderr))
	}
	for _, c := range []string{"rows_read", "records_produced", "records_acked", "records_undelivered"} {
		if !strings.Contains(out, `"`+c+`":null`) {
			t.Errorf("%s is not null (unknown) in %s", c, out)
		}
	}
}

// TestAKilledJobIsReportedWithItsLastProgress: counters the job passed to
// its parent before it was killed are in the parent's report, said to be
// the last ones reported.
func TestAKilledJobIsReportedWithItsLastProgress(t *testing.T) {
	code, rep, out, stderr := supervise(t, context.Background(), "progress-oom")
	if code != 1 || rep.RowsRead != 140000 || rep.RecordsAcked != 138065 || rep.RecordsUndelivered != 935 || rep.RowsSkipped["null_key"] != 1000 ||
		!strings.Contains(out, `"counters":"last_progress"`) || !strings.Contains(rep.Error, "last reported") {
		t.Errorf("exit %d, report %s\nstderr: %s", code, out, tail(stderr))
	}
}

// TestTheJobStopsAtOnceIfItsParentDiedBeforeItStarted: a parent that dies
// before the parent-death signal is set up sends none; the job notices
// that its parent is not the one Supervise named and produces nothing.
func TestTheJobStopsAtOnceIfItsParentDiedBeforeItStarted(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dir := t.TempDir()
	job := exec.Command(os.Args[0])
	job.Env = append(os.Environ(), helperEnv+"=produce-watched", helperDirEnv+"="+dir,
		SupervisedEnv+"=1", ParentPIDEnv+"="+strconv.Itoa(dead.Process.Pid))
	timer := time.AfterFunc(5*time.Second, func() { _ = job.Process.Kill() })
	defer timer.Stop()
	err := job.Run()
	if job.ProcessState == nil || job.ProcessState.ExitCode() != 130 || size(dir, "records") != 0 {
		t.Fatalf("the job whose parent was gone: %v, %d bytes of records", err, size(dir, "records"))
	}
}
