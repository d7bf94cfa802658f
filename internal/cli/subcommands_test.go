package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// TestHelpSubcommandPrintsHelpAndSucceeds: `backfill help` is a request
// for help, not an invalid setting (exit 2).
func TestHelpSubcommandPrintsHelpAndSucceeds(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"check", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), args, nil, &stdout, &stderr)
		if ExitCode(err) != 0 || !strings.Contains(stdout.String()+stderr.String(), "Usage: backfill") {
			t.Errorf("%q: exit %d (%v)\nstdout: %s\nstderr: %s", args, ExitCode(err), err, stdout.String(), tail(stderr.String()))
		}
	}
}

// TestCheckReportsTheShardsAsRunDoes: check's report names the same shard
// as run's (shard_count 1 when unsharded, not 0).
func TestCheckReportsTheShardsAsRunDoes(t *testing.T) {
	for _, check := range []bool{true, false} {
		w := &world{rows: 4}
		rep, err := w.run(t, testConfig(), check)
		if err != nil {
			t.Fatal(err)
		}
		if rep.ShardCount != 1 || rep.ShardIndex != 0 {
			t.Errorf("check=%v: shard_index %d, shard_count %d, want 0 and 1", check, rep.ShardIndex, rep.ShardCount)
		}
	}
}

// TestTheJobPassesItsProgressOn: the run's counters reach the progress
// sink (the pipe to the supervising parent), the last time as reported.
func TestTheJobPassesItsProgressOn(t *testing.T) {
	var mu sync.Mutex
	var last backfill.Progress
	w := &world{rows: 50, progress: func(p backfill.Progress) { mu.Lock(); last = p; mu.Unlock() }}
	rep, err := w.run(t, testConfig(), false)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if last.RowsRead != 50 || last.RecordsAcked != rep.RecordsAcked || last.RecordsProduced != 50 {
		t.Fatalf("last progress %+v, report %+v", last, rep)
	}
}
