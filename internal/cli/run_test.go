package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
)

// TestReportFileFitsATerminationMessage: the kubelet keeps 4096 bytes of
// a termination message, so the report file must be valid JSON within
// that, whatever the run produced; stdout keeps everything.
func TestReportFileFitsATerminationMessage(t *testing.T) {
	rep := &backfill.Report{RecordsAcked: 123456, Verification: &backfill.Verification{Mode: "full"}, Duplicates: &backfill.Duplicates{Records: 100}}
	for p := range int32(200) { // an MSK topic with 200 partitions
		rep.PartitionsWritten = append(rep.PartitionsWritten, backfill.PartitionWrite{Partition: p, EndOffsetBefore: 1 << 40, Acked: 500000, LowestOffset: 1 << 40, HighestOffset: 1<<40 + 499999, Ranges: 1})
	}
	for i := range 100 {
		rep.Duplicates.Keys = append(rep.Duplicates.Keys, int64(i)<<50)
		rep.Verification.Examples = append(rep.Verification.Examples, strings.Repeat("ACCOUNT_ID=1: sent 2, table missing ", 3))
	}
	err := backfill.Errorf(backfill.KindVerify, "%s", strings.Repeat("a long explanation ", 400))
	file := filepath.Join(t.TempDir(), "termination-log")
	var stdout bytes.Buffer
	finish(rep, err, file, &stdout, io.Discard)

	got, rerr := os.ReadFile(file)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var short backfill.Report
	if len(got) > 4096 || json.Unmarshal(got, &short) != nil {
		t.Fatalf("report file: %d bytes, valid JSON: %v", len(got), json.Unmarshal(got, &short) == nil)
	}
	if short.RecordsAcked != 123456 || short.ExitCode != backfill.ExitVerify || short.Status != "failed" || len(short.Truncated) == 0 {
		t.Fatalf("the short report lost its counters or does not say what it dropped: %+v", short)
	}
	var full backfill.Report
	if json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &full) != nil || len(full.PartitionsWritten) != 200 || len(full.Duplicates.Keys) != 100 || full.Truncated != nil {
		t.Fatalf("stdout lost detail: %d bytes", stdout.Len())
	}
}

// TestSmallReportsAreWrittenWhole: nothing is dropped from a report that fits.
func TestSmallReportsAreWrittenWhole(t *testing.T) {
	rep := &backfill.Report{RecordsAcked: 5, PartitionsWritten: []backfill.PartitionWrite{{Partition: 0, Acked: 5}}}
	file := filepath.Join(t.TempDir(), "r.json")
	var stdout bytes.Buffer
	finish(rep, nil, file, &stdout, io.Discard)
	got, _ := os.ReadFile(file)
	if !bytes.Equal(bytes.TrimSpace(stdout.Bytes()), got) {
		t.Fatalf("file %s\nstdout %s", got, stdout.Bytes())
	}
}

// TestPanicIsAnInternalErrorWithAReport: a panic in the job exits 1 with
// a report saying "internal", not Go's exit 2 (which means "fix the
// configuration") with no report.
func TestPanicIsAnInternalErrorWithAReport(t *testing.T) {
	old := jobBody
	defer func() { jobBody = old }()
	jobBody = func(*job, context.Context) error { panic("boom") }
	var stdout bytes.Buffer
	args := []string{"--bigquery-project=p", "--bigquery-table=p.d.t", "--kafka-brokers=127.0.0.1:1", "--schema-registry-url=http://127.0.0.1:1", "--ksqldb-url=http://127.0.0.1:1"}
	err := Run(context.Background(), args, nil, &stdout, io.Discard)
	var rep backfill.Report
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &rep); jerr != nil {
		t.Fatalf("no report: %v\n%s", jerr, stdout.String())
	}
	if ExitCode(err) != backfill.ExitInternal || rep.ExitCode != 1 || rep.ErrorKind != "internal" || !strings.Contains(rep.Error, "panic: boom") {
		t.Fatalf("exit %d, report %+v", ExitCode(err), rep)
	}
}

// TestUnknownEnvironmentVariablesAreWarnedAbout: a BACKFILL_* variable
// that names no setting (a ConfigMap typo) is logged with the closest
// setting, instead of being ignored silently.
func TestUnknownEnvironmentVariablesAreWarnedAbout(t *testing.T) {
	old := jobBody
	defer func() { jobBody = old }()
	jobBody = func(*job, context.Context) error { return nil }
	var stderr bytes.Buffer
	args := []string{"--bigquery-project=p", "--bigquery-table=p.d.t", "--kafka-brokers=127.0.0.1:1", "--schema-registry-url=http://127.0.0.1:1", "--ksqldb-url=http://127.0.0.1:1"}
	if err := Run(context.Background(), args, []string{"BACKFILL_KAFKA_BROKER=x:9092", "HOME=/root"}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "BACKFILL_KAFKA_BROKER is not a setting") || !strings.Contains(stderr.String(), "BACKFILL_KAFKA_BROKERS") {
		t.Fatalf("no warning:\n%s", stderr.String())
	}
}

// TestFullVerificationIsRefusedPastItsMemoryBound: verify=full over more
// rows than the Job's memory can hold is a configuration error before
// anything is read; sample mode has no such bound.
func TestFullVerificationIsRefusedPastItsMemoryBound(t *testing.T) {
	err := fullVerifyBound(ksqldb.MaxFullKeys+1, true)
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "ksqldb.verify=sample") || !strings.Contains(err.Error(), "shard.count") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
	if err := fullVerifyBound(ksqldb.MaxFullKeys, true); err != nil {
		t.Fatal(err)
	}
	if err := fullVerifyBound(1<<40, false); err != nil {
		t.Fatalf("an unknown size: %v", err)
	}
}
