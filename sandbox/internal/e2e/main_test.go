// Package e2e runs the real backfill binary end to end against the
// sandbox stack: kfake, the BigQuery emulator and the registry and ksqlDB
// doubles. Every test that needs the emulator lives here so that it links once.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// backfillBin is the backfill command built from cmd/backfill for this run.
var backfillBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "backfill-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	backfillBin = filepath.Join(dir, "backfill")
	// Built in the job's module, with its dependency versions, as the
	// release binary is.
	build := exec.Command("go", "build", "-o", backfillBin, "./cmd/backfill")
	build.Dir = "../../.."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/backfill:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

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
