package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// eachKeyOnce reads the whole topic with franz-go and fails unless every
// user of the stack is in it exactly once.
func eachKeyOnce(t *testing.T, s *stack.Stack) {
	t.Helper()
	keys := consumeKeys(t, s.Kafka.ListenAddrs(), stored(s.Kafka))
	for user := range s.Expected() {
		if keys[user] != 1 {
			t.Fatalf("user %d is in the topic %d times; want exactly once", user, keys[user])
		}
	}
	if len(keys) != len(s.Expected()) {
		t.Fatalf("%d distinct keys in the topic, %d users", len(keys), len(s.Expected()))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// jobArgs returns the stack's flags with extra ones replacing or adding
// settings; a leading "check" or "run" stays the subcommand.
func jobArgs(s *stack.Stack, extra []string) []string {
	var args []string
	if len(extra) > 0 && (extra[0] == "check" || extra[0] == "run") {
		args, extra = []string{extra[0]}, extra[1:]
	}
	overridden := map[string]bool{}
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		overridden[name] = true
	}
	for _, a := range s.Args() {
		if name, _, _ := strings.Cut(a, "="); !overridden[name] {
			args = append(args, a)
		}
	}
	return append(args, extra...)
}

// startJob starts the binary with the stack's settings plus extra flags
// and returns without waiting for it.
func startJob(t *testing.T, s *stack.Stack, env []string, extra ...string) *bgJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	j := &bgJob{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{}), cancel: cancel}
	j.cmd = exec.CommandContext(ctx, backfillBin, jobArgs(s, extra)...)
	j.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	j.cmd.Stdout, j.cmd.Stderr = j.stdout, j.stderr
	if err := j.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		j.err = j.cmd.Wait()
		close(j.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-j.done
	})
	return j
}

// slowProduce makes the stack's broker take d for every Produce request,
// so that a run lasts long enough to be interrupted mid-way. It returns
// the number of Produce requests answered so far and a function that
// makes the broker fast again.
func slowProduce(s *stack.Stack, d time.Duration) (requests func() int64, fast func()) {
	var n atomic.Int64
	var off atomic.Bool
	c := s.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if off.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		time.Sleep(d)
		n.Add(1)
		return nil, nil, false
	})
	return n.Load, func() { off.Store(true) }
}

// stored is how many records the cluster's topic holds (high watermarks).
func stored(c *kfake.Cluster) int64 {
	var n int64
	for _, p := range c.PartitionInfos(stack.Topic) {
		n += p.HighWatermark - p.LogStartOffset
	}
	return n
}

// consumeKeys reads n records of the topic with franz-go and counts each
// decoded key.
func consumeKeys(t *testing.T, brokers []string, n int64, opts ...kgo.Opt) map[int64]int {
	t.Helper()
	keys := map[int64]int{}
	eachRecord(t, brokers, n, func(r *kgo.Record) {
		k, _ := binary.Varint(r.Key[5:])
		keys[k]++
	}, opts...)
	return keys
}

func waitUntil(t *testing.T, what string, j *bgJob, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case <-j.done:
			t.Fatalf("the job ended before %s\nstdout:\n%s\nstderr:\n%s", what, j.stdout.String(), j.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\nstderr:\n%s", what, j.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backfillBin is the backfill command built from cmd/backfill for this run.
var backfillBin string

// startStack starts a sandbox stack for one test.
func startStack(t *testing.T, opts stack.Options) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// result is one run of the binary.
type result struct {
	code   int
	report backfill.Report
	stdout string
	stderr string
}

// runJob runs the binary with the stack's settings plus extra flags.
func runJob(t *testing.T, s *stack.Stack, extra ...string) result {
	t.Helper()
	return runJobEnv(t, s, nil, extra...)
}

func runJobEnv(t *testing.T, s *stack.Stack, env []string, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A flag given here replaces the stack's value for that setting.
	cmd := exec.CommandContext(ctx, backfillBin, jobArgs(s, extra)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running backfill: %v\n%s", err, stderr.String())
	}
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r.report); jerr != nil {
		t.Fatalf("stdout is not one JSON report (%v):\n%s\nstderr:\n%s", jerr, stdout.String(), stderr.String())
	}
	if r.report.ExitCode != r.code {
		t.Fatalf("report says exit code %d, process exited %d", r.report.ExitCode, r.code)
	}
	return r
}

// eachRecord reads n records of the stream's topic from the start with
// franz-go, an independent client, and hands each to fn.
func eachRecord(t *testing.T, brokers []string, n int64, fn func(*kgo.Record), opts ...kgo.Opt) {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(stack.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got int64
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", got, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			fn(r)
		})
	}
}
