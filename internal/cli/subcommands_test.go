package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// The check's report says which Google credentials the BigQuery
// clients use (here a workload identity federation credential
// configuration named by GOOGLE_APPLICATION_CREDENTIALS), even when
// another system fails the check first; never a token or a key. A run's
// report leaves it to the first log line.
func TestCheckReportsTheGoogleCredentials(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "credential-config.json")
	const sa = "ordermin-backfill@orders-prod.iam.gserviceaccount.com"
	const aud = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/eks/providers/cluster"
	conf := `{"type":"external_account","audience":"` + aud + `","subject_token_type":"urn:ietf:params:oauth:token-type:jwt",
		"token_url":"https://sts.googleapis.com/v1/token","credential_source":{"file":"/var/run/secrets/gcp-wif/token"},
		"service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/` + sa + `:generateAccessToken"}`
	if err := os.WriteFile(cfgFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", cfgFile)
	t.Setenv("HOME", dir)
	for _, tc := range []struct {
		name  string
		check bool
		fail  map[string]error
		want  bool
	}{
		{"check", true, nil, true},
		{"check failing at Kafka", true, map[string]error{"kafka.New": nil}, true},
		{"run", false, nil, false},
	} {
		w := &world{rows: 4, fail: tc.fail}
		rep, _ := w.run(t, testConfig(), tc.check)
		var got map[string]any
		if err := json.Unmarshal(rep.JSON(), &got); err != nil {
			t.Fatal(err)
		}
		gc, ok := got["google_credentials"].(map[string]any)
		if ok != tc.want {
			t.Errorf("%s: google_credentials %v, want it %v", tc.name, got["google_credentials"], tc.want)
			continue
		}
		if !ok {
			continue
		}
		for k, v := range map[string]string{"type": "external_account", "source": "GOOGLE_APPLICATION_CREDENTIALS", "file": cfgFile,
			"audience": aud, "token_file": "/var/run/secrets/gcp-wif/token", "service_account": sa} {
			if gc[k] != v {
				t.Errorf("%s: google_credentials.%s = %v, want %s", tc.name, k, gc[k], v)
			}
		}
	}
}
