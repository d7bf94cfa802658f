package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/config"
)

// SupervisedEnv marks the process Supervise starts, which runs the job.
const SupervisedEnv = "ORDERMIN_BACKFILL_SUPERVISED"

// stderrTail bounds what a crash report quotes of the job's stderr.
const stderrTail = 2048

// Supervise runs the job as a child process (exe with args, environ plus
// SupervisedEnv, ParentPIDEnv and ProgressFDEnv) and returns the exit code
// to exit with. The job writes its own report and exit code; Supervise
// passes both through. A crash kills the job before it can: a fault in
// librdkafka's C code (SIGSEGV, SIGABRT) or a fatal error of Go's runtime,
// which exit with a signal or with Go's code 2, the code the exit-code
// table gives invalid settings; or a SIGKILL, which is what the kernel's
// OOM killer sends. Then Supervise writes the report itself (status
// failed, exit code 1, the cause, the end of the job's stderr, and the
// counters as the job last passed them on, or null when it passed none)
// to stdout and report.file and returns 1, so that the Job retries
// instead of failing for a configuration error. SIGTERM and SIGINT (ctx's
// end) are passed on to the job, which drains and reports. If Supervise's
// process dies (even by SIGKILL), the job gets SIGTERM (Linux) or notices
// (WatchParent), and drains and stops.
func Supervise(ctx context.Context, exe string, args, environ []string, stdout, stderr io.Writer) int {
	started := time.Now().UTC()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append([]string(nil), environ...), SupervisedEnv+"=1", ParentPIDEnv+"="+strconv.Itoa(os.Getpid()))
	out := &reportWatch{w: stdout}
	tail := &crashWatch{}
	cmd.Stdout, cmd.Stderr = out, io.MultiWriter(stderr, tail)
	cmd.SysProcAttr = childAttr()
	progress := &progressWatch{}
	pr, pw, perr := os.Pipe()
	if perr == nil {
		cmd.ExtraFiles = []*os.File{pw} // the child's fd 3
		cmd.Env = append(cmd.Env, ProgressFDEnv+"=3")
	}
	// The parent-death signal fires when the thread that started the child
	// ends: keep this goroutine on it until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Start()
	if perr == nil {
		pw.Close()
		defer pr.Close()
	}
	if err != nil {
		return crashed(started, fmt.Sprintf("starting the job's process %s: %v", exe, err), "", progress, args, environ, stdout, stderr)
	}
	if perr == nil {
		go progress.read(pr)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM) // the job drains within pipeline.drain_timeout
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	if perr == nil {
		progress.wait(time.Second) // the last line the child wrote
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case !errors.As(err, &exit):
		return crashed(started, fmt.Sprintf("waiting for the job's process: %v", err), tail.String(), progress, args, environ, stdout, stderr)
	}
	ws, _ := exit.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		return crashed(started, "the job's process was killed with SIGKILL, which is what the kernel's OOM killer sends "+
			"when the container exceeds its memory limit: check the limit (kubectl describe pod: OOMKilled, or the kernel log), "+
			"raise it, or lower what the job holds (kafka.queue_max_kbytes; ksqldb.verify=full keeps 16 bytes per key); or someone killed it (kill -9)", tail.String(), progress, args, environ, stdout, stderr)
	case ws.Signaled():
		return crashed(started, fmt.Sprintf("the job's process was killed by signal %s (%s), a crash in librdkafka or Go's runtime", signalName(ws.Signal()), ws.Signal()),
			tail.String(), progress, args, environ, stdout, stderr)
	case out.sawReport():
		return exit.ExitCode()
	}
	return crashed(started, fmt.Sprintf("the job's process exited with code %d without a report (a crash in librdkafka or Go's runtime)", exit.ExitCode()),
		tail.String(), progress, args, environ, stdout, stderr)
}

// crashed writes the report of a job that could not write its own, with
// the counters the job last passed on, or unknown ones.
func crashed(started time.Time, what, stderrEnd string, progress *progressWatch, args, environ []string, stdout, stderr io.Writer) int {
	rep := &backfill.Report{StartedAt: started, Counters: backfill.CountersUnknown}
	counters := "the job's process passed on no progress, so the counters are unknown (null), not 0"
	if p, at, ok := progress.last(); ok {
		rep.ApplyProgress(p, at)
		counters = fmt.Sprintf("the counters are those it last reported, at %s (about every %s): records produced after that are not counted, "+
			"and records_undelivered were in flight", at.Format(time.RFC3339), backfill.ProgressSnapshotEvery)
	}
	msg := "internal error: " + what + "; " + counters + "; the run's progress is in the log; rerunning is safe: mode=auto resumes with what ksqlDB lacks"
	if stderrEnd != "" {
		msg += "; " + stderrEnd
	}
	err := backfill.Errorf(backfill.KindInternal, "%s", msg)
	fmt.Fprintln(stderr, "ordermin-backfill:", err)
	finish(rep, err, reportFile(args, environ), stdout, stderr)
	return backfill.KindInternal.ExitCode()
}

// signalName is the signal's conventional name, e.g. SIGSEGV.
func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGSEGV: "SIGSEGV", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGILL: "SIGILL",
		syscall.SIGFPE: "SIGFPE", syscall.SIGTRAP: "SIGTRAP", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGQUIT: "SIGQUIT",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return "signal " + strconv.Itoa(int(s))
}

// progressWatch keeps the last progress line the job's process wrote.
type progressWatch struct {
	mu   sync.Mutex
	p    backfill.Progress
	at   time.Time
	ok   bool
	done chan struct{}
}

// read reads progress lines from r until it ends.
func (w *progressWatch) read(r io.Reader) {
	w.mu.Lock()
	w.done = make(chan struct{})
	done := w.done
	w.mu.Unlock()
	defer close(done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var p backfill.Progress
		if json.Unmarshal(sc.Bytes(), &p) != nil {
			continue
		}
		w.mu.Lock()
		w.p, w.at, w.ok = p, time.Now().UTC(), true
		w.mu.Unlock()
	}
}

// wait waits at most d for read to reach the end of the pipe.
func (w *progressWatch) wait(d time.Duration) {
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(d):
	}
}

// last returns the last progress read and when it was read.
func (w *progressWatch) last() (backfill.Progress, time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.p, w.at, w.ok
}

// reportFile finds report.file in the job's flags or environment.
func reportFile(args, environ []string) string {
	if len(args) > 0 && (args[0] == "run" || args[0] == "check") {
		args = args[1:]
	}
	getenv := lookupEnv(environ)
	if cfg, err := config.Load(args, getenv, io.Discard); err == nil {
		return cfg.ReportFile
	}
	return getenv(config.Env("report.file"))
}

// reportWatch passes the job's stdout through and notes whether a line
// of it began a JSON report.
type reportWatch struct {
	w      io.Writer
	mu     sync.Mutex
	report bool
	inLine bool // the last byte was not a newline
}

func (r *reportWatch) Write(p []byte) (int, error) {
	r.mu.Lock()
	for _, b := range p {
		if !r.inLine && b == '{' {
			r.report = true
		}
		r.inLine = b != '\n'
	}
	r.mu.Unlock()
	return r.w.Write(p)
}

func (r *reportWatch) sawReport() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report
}

// crashWatch reads the job's stderr line by line: it keeps the first line
// with which Go's runtime starts a crash dump (a fatal signal, a fatal
// error, an unrecovered panic) and the last line logged before it.
type crashWatch struct {
	mu      sync.Mutex
	partial []byte
	crash   string
	lastLog string
}

// crashPrefixes start the first line of Go's crash output.
var crashPrefixes = []string{"fatal error:", "panic:", "SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP", "signal "}

func (c *crashWatch) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(string(bytes.ToValidUTF8(c.partial[:i], nil)))
		c.partial = c.partial[i+1:]
	}
	if len(c.partial) > 1<<16 { // a line without end: keep its start
		c.line(string(bytes.ToValidUTF8(c.partial[:stderrTail], nil)))
		c.partial = c.partial[:0]
	}
	return len(p), nil
}

func (c *crashWatch) line(l string) {
	l = strings.TrimSpace(l)
	if l == "" || c.crash != "" {
		return
	}
	for _, p := range crashPrefixes {
		if strings.HasPrefix(l, p) {
			c.crash = truncateTo(l, stderrTail/2)
			return
		}
	}
	c.lastLog = truncateTo(l, stderrTail/2)
}

// String describes the crash from the job's stderr.
func (c *crashWatch) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	if c.crash != "" {
		parts = append(parts, "Go's runtime reported: "+c.crash)
	}
	if c.lastLog != "" {
		parts = append(parts, "the last line logged before: "+c.lastLog)
	}
	return strings.Join(parts, "; ")
}

func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Supervised reports whether this process is the job Supervise started.
func Supervised() bool { return os.Getenv(SupervisedEnv) != "" }
