package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// slowJob starts the binary on a stack whose broker is slow enough for the
// run to last seconds, and waits until records are in the topic.
func slowJob(t *testing.T, extra ...string) (*stack.Stack, *bgJob) {
	t.Helper()
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3})
	requests, _ := slowProduce(s, 40*time.Millisecond)
	j := startJob(t, s, nil, append([]string{"--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=100",
		"--kafka-linger=1ms", "--pipeline-workers=1", "--pipeline-batch-size=20"}, extra...)...)
	waitUntil(t, "records in the topic", j, func() bool { return requests() >= 5 && stored(s.Kafka) > 0 })
	return s, j
}

// childOf returns the pid of the process whose parent is pid.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		if state, ppid, ok := procStat(d); ok && ppid == pid && state != "Z" {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			return n
		}
	}
	t.Fatalf("process %d has no child: is the binary not supervising the job?", pid)
	return 0
}

// procStat reads a /proc/<pid>/stat file's state and parent pid.
func procStat(path string) (state string, ppid int, ok bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	i := strings.LastIndexByte(string(raw), ')')
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// alive says whether pid runs (a zombie does not).
func alive(pid int) bool {
	state, _, ok := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	return ok && state != "Z"
}

// TestTheJobStopsWhenTheBinaryIsKilled: SIGKILL to the binary (a VM, cron,
// timeout -s KILL) leaves the job's process without the parent that passes
// SIGTERM on; it must still drain, stop producing and write report.file.
func TestTheJobStopsWhenTheBinaryIsKilled(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.json")
	s, j := slowJob(t, "--report-file="+report)
	child := childOf(t, j.cmd.Process.Pid)
	defer func() {
		if alive(child) {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}()
	if err := j.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-j.done
	killed := stored(s.Kafka)
	for deadline := time.Now().Add(40 * time.Second); alive(child); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the job's process (pid %d) still runs 40s after the binary was killed: %d records written since", child, stored(s.Kafka)-killed)
		}
	}
	after := stored(s.Kafka)
	time.Sleep(500 * time.Millisecond)
	if stored(s.Kafka) != after {
		t.Fatal("records reached the topic after the job's process ended")
	}
	raw, err := os.ReadFile(report)
	var rep backfill.Report
	if err != nil || json.Unmarshal(raw, &rep) != nil {
		t.Fatalf("no report file (%v): %s", err, raw)
	}
	total := int64(len(s.Expected())) + 1
	if rep.Status != "interrupted" || rep.ExitCode != backfill.ExitInterrupted || rep.RowsRead >= total || rep.RecordsAcked > after {
		t.Fatalf("report file %s: want an interrupted partial run (%d rows, %d records in the topic)", raw, total, after)
	}
	t.Logf("%d records in the topic when the binary was killed, %d when the job stopped; report: %d acknowledged", killed, after, rep.RecordsAcked)
}

// TestAnOOMKilledJobIsReportedWithItsLastProgress: SIGKILL to the job's
// process (what the OOM killer sends) gets a report from the binary that
// names the signal and the memory limit, with the counters the job last
// passed on, not zeros.
func TestAnOOMKilledJobIsReportedWithItsLastProgress(t *testing.T) {
	s, j := slowJob(t)
	child := childOf(t, j.cmd.Process.Pid)
	time.Sleep(2 * backfill.ProgressSnapshotEvery) // at least one snapshot while records flow
	if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := j.wait(t)
	rep := r.report
	if r.code != backfill.ExitInternal || rep.Counters != backfill.CountersLastProgress || rep.RecordsAcked == 0 || rep.RecordsAcked > stored(s.Kafka) ||
		!strings.Contains(rep.Error, "SIGKILL") || !strings.Contains(rep.Error, "memory limit") || strings.Contains(rep.Error, "librdkafka") {
		t.Fatalf("exit %d, report %s\nstderr: %s", r.code, r.stdout, tailOf(r.stderr))
	}
	accounted(t, r)
	t.Logf("report: %d rows read, %d acknowledged (topic: %d)", rep.RowsRead, rep.RecordsAcked, stored(s.Kafka))
}
