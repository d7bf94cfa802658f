package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// bgJob is the backfill binary running in the background.
type bgJob struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error
	cancel         context.CancelFunc
}

// wait waits for the job to end and parses its report.
func (j *bgJob) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-j.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the job did not end\nstderr:\n%s", j.stderr.String())
	}
	r := result{stdout: j.stdout.String(), stderr: j.stderr.String()}
	if ee, ok := j.err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if j.err != nil {
		t.Fatalf("running backfill: %v\n%s", j.err, r.stderr)
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &r.report); err != nil {
		t.Fatalf("stdout is not one JSON report (%v):\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	if r.report.ExitCode != r.code {
		t.Fatalf("report says exit code %d, process exited %d", r.report.ExitCode, r.code)
	}
	return r
}

// accounted checks that the report accounts for every produced record.
func accounted(t *testing.T, r result) {
	t.Helper()
	rep := r.report
	if rep.RecordsAcked < 0 || rep.RecordsFailed < 0 || rep.RecordsUndelivered < 0 ||
		rep.RecordsAcked+rep.RecordsFailed+rep.RecordsUndelivered != rep.RecordsProduced {
		t.Fatalf("report does not account for every record: %+v\n%s", rep, r.stderr)
	}
	skipped := int64(0)
	for _, n := range rep.RowsSkipped {
		skipped += n
	}
	if rep.RecordsEncoded+skipped > rep.RowsRead || rep.RecordsProduced > rep.RecordsEncoded {
		t.Fatalf("report counts more records than rows: %+v", rep)
	}
}

// TestSIGTERMMidRunFlushesAndReportsInterrupted interrupts a run while
// records flow. The job stops reading, drains what is in flight, exits
// 130 with an "interrupted" report whose every acknowledged record is in
// the topic, and a rerun completes the backfill.
func TestSIGTERMMidRunFlushesAndReportsInterrupted(t *testing.T) {
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3})
	requests, fast := slowProduce(s, 40*time.Millisecond)
	report := filepath.Join(t.TempDir(), "report.json")
	j := startJob(t, s, nil, "--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=100",
		"--kafka-linger=1ms", "--pipeline-workers=1", "--pipeline-batch-size=20", "--report-file="+report)
	waitUntil(t, "records in the topic", j, func() bool { return requests() >= 5 && stored(s.Kafka) > 0 })
	if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := j.wait(t)
	rep := r.report
	if r.code != backfill.ExitInterrupted || rep.Status != "interrupted" || rep.ErrorKind != "interrupted" {
		t.Fatalf("exit %d, status %q, kind %q; want 130 interrupted\n%s", r.code, rep.Status, rep.ErrorKind, r.stderr)
	}
	accounted(t, r)
	total := int64(len(s.Expected())) + 1 // MIN per user, and one NULL user group
	if rep.SourceTotal == nil || *rep.SourceTotal != total || rep.RowsRead == 0 || rep.RowsRead >= total || rep.RecordsAcked == 0 {
		t.Fatalf("report %+v: want a partial run (%d rows in the table)", rep, total)
	}
	// The drain delivered what was in flight: nothing failed or is left
	// undelivered, and the topic holds exactly the acknowledged records.
	if rep.RecordsFailed != 0 || rep.RecordsUndelivered != 0 {
		t.Fatalf("drain left records failed or undelivered: %+v", rep)
	}
	if n := stored(s.Kafka); n != rep.RecordsAcked {
		t.Fatalf("the topic holds %d records, the report says %d acknowledged", n, rep.RecordsAcked)
	}
	keys := consumeKeys(t, s.Kafka.ListenAddrs(), rep.RecordsAcked)
	for k, n := range keys {
		if n != 1 || s.Expected()[k] == 0 {
			t.Fatalf("key %d is in the topic %d times (expected %v)", k, n, s.Expected()[k])
		}
	}
	if rep.Verification != nil {
		t.Fatalf("an interrupted run verified: %+v", rep.Verification)
	}
	if !strings.Contains(rep.Error, "rerun") {
		t.Errorf("error %q does not tell the operator to rerun", rep.Error)
	}
	file, err := os.ReadFile(report)
	if err != nil || !bytes.Equal(bytes.TrimSpace(file), []byte(strings.TrimSpace(r.stdout))) {
		t.Fatalf("report file differs from stdout (%v):\n%s", err, file)
	}
	t.Logf("interrupted after %d of %d rows: %d acknowledged", rep.RowsRead, total, rep.RecordsAcked)

	// The rerun finishes the backfill: it passes verification and, with
	// the interrupted run's records, the topic holds every user.
	fast()
	again := runJob(t, s)
	if again.code != 0 || again.report.Verification == nil || again.report.Verification.Status != "passed" ||
		again.report.Verification.Matched != again.report.Verification.Checked {
		t.Fatalf("rerun: exit %d, report %+v\n%s", again.code, again.report, again.stderr)
	}
	keys = consumeKeys(t, s.Kafka.ListenAddrs(), stored(s.Kafka))
	for user := range s.Expected() {
		if keys[user] == 0 {
			t.Fatalf("user %d is not in the topic after the rerun", user)
		}
	}
	if len(keys) != len(s.Expected()) {
		t.Fatalf("%d distinct keys in the topic, %d users", len(keys), len(s.Expected()))
	}
}

// TestBrokerGoneMidRunFailsWithProduceExitAndRerunCompletes stops the
// Kafka cluster while records flow. With a short message timeout the run
// fails with exit 5 and a report that separates acknowledged from failed
// records. The rerun needs a broker: once Kafka is back (here a fresh
// cluster, with ksqlDB's table query reading it again) it completes and
// verifies.
func TestBrokerGoneMidRunFailsWithProduceExitAndRerunCompletes(t *testing.T) {
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3})
	requests, _ := slowProduce(s, 40*time.Millisecond)
	j := startJob(t, s, nil, "--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=200",
		"--kafka-linger=1ms", "--kafka-message-timeout=2s", "--pipeline-workers=1", "--pipeline-batch-size=20")
	waitUntil(t, "records in the topic", j, func() bool { return requests() >= 5 })
	s.Kafka.Close()
	start := time.Now()
	r := j.wait(t)
	rep := r.report
	if r.code != backfill.ExitProduce || rep.Status != "failed" || rep.ErrorKind != "produce" {
		t.Fatalf("exit %d, status %q, kind %q, error %q; want 5 produce\n%s", r.code, rep.Status, rep.ErrorKind, rep.Error, r.stderr)
	}
	accounted(t, r)
	if rep.RecordsAcked == 0 || rep.RecordsFailed == 0 || len(rep.DeliveryErrors) == 0 || rep.RowsRead > int64(len(s.Expected())) {
		t.Fatalf("report %+v: want acknowledged and failed records from a partial run", rep)
	}
	if !strings.Contains(rep.Error, "failed delivery") && !strings.Contains(rep.Error, "undelivered") {
		t.Errorf("error %q does not say records were not delivered", rep.Error)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the run took %s to fail after the broker went away (message timeout 2s)", d)
	}
	t.Logf("broker gone: %d rows read, %d acknowledged, %d failed, %d undelivered; errors %v",
		rep.RowsRead, rep.RecordsAcked, rep.RecordsFailed, rep.RecordsUndelivered, rep.DeliveryErrors)

	// Kafka is back (its data lost: a fresh cluster) and ksqlDB's table
	// query reads it; the rerun produces everything and verifies.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, stack.Topic), kfake.SeedTopics(1, "TABLE.MIN_ORDER"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ksqlfake.New(ksqlfake.Config{Brokers: c.ListenAddrs(), Registry: s.Registry, RegistryURL: s.Registry.URL(), Topic: stack.Topic})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	s.KsqlDB.Close()
	s.Kafka, s.KsqlDB = c, k // the stack's Close stops them
	again := runJob(t, s)
	if again.code != 0 || again.report.Verification == nil || again.report.Verification.Matched != int64(len(s.Expected())) {
		t.Fatalf("rerun: exit %d, report %+v\n%s", again.code, again.report, again.stderr)
	}
}

func TestSchemaRegistryFaults(t *testing.T) {
	s := startStack(t, stack.Options{Users: 100})

	// A few 5xx answers are retried with backoff and the run succeeds.
	before := s.Registry.Requests()
	s.Registry.FailNext(3, http.StatusInternalServerError)
	r := runJob(t, s)
	if r.code != 0 || r.report.RecordsAcked != 100 {
		t.Fatalf("transient 500s: exit %d, report %+v\n%s", r.code, r.report, r.stderr)
	}
	if n := s.Registry.Requests() - before; n < 5 {
		t.Errorf("%d registry requests; want the 3 failures retried", n)
	}
	acked := stored(s.Kafka)

	// A registry that keeps failing: a clear unavailable error (exit 7)
	// naming the registry, before anything is written.
	s.Registry.FailNext(1000, http.StatusServiceUnavailable)
	r = runJob(t, s, "--schema-registry-retries=2")
	if r.code != backfill.ExitUnavailable || !strings.Contains(r.report.Error, s.Registry.URL()) || !strings.Contains(r.report.Error, "503") {
		t.Fatalf("persistent 503: exit %d, error %q", r.code, r.report.Error)
	}
	if r.report.RecordsProduced != 0 || stored(s.Kafka) != acked {
		t.Fatalf("records written although the schemas were unknown: %+v", r.report)
	}
	s.Registry.FailNext(0, 0)

	// A registry that does not answer within the timeout: the same.
	s.Registry.SetDelay(5 * time.Second)
	start := time.Now()
	r = runJob(t, s, "--schema-registry-timeout=200ms", "--schema-registry-retries=1")
	s.Registry.SetDelay(0)
	if r.code != backfill.ExitUnavailable || r.report.RecordsProduced != 0 {
		t.Fatalf("registry timeout: exit %d, error %q", r.code, r.report.Error)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a 200ms registry timeout took %s to fail", d)
	}

	// A subject whose schema ksqlDB could not have registered (the key is
	// a record, not "long"): a contract error before any write.
	if _, err := s.Registry.Register(stack.Topic+"-key", `{"type":"record","name":"K","fields":[{"name":"ACCOUNT_ID","type":"long"}]}`); err != nil {
		t.Fatal(err)
	}
	r = runJob(t, s)
	if r.code != backfill.ExitContract || r.report.RecordsProduced != 0 || stored(s.Kafka) != acked {
		t.Fatalf("incompatible key schema: exit %d, error %q, report %+v", r.code, r.report.Error, r.report)
	}
}

func TestKsqlDBFaults(t *testing.T) {
	s := startStack(t, stack.Options{Users: 300})

	// Pull queries rate limited (429 / 42900) are retried; the run passes.
	s.KsqlDB.RateLimitNext(4)
	before := s.KsqlDB.Requests("/query-stream") + s.KsqlDB.Requests("/query")
	r := runJob(t, s)
	if r.code != 0 || r.report.Verification == nil || r.report.Verification.Matched != 300 {
		t.Fatalf("rate limited: exit %d, report %+v\n%s", r.code, r.report, r.stderr)
	}
	if n := s.KsqlDB.Requests("/query-stream") + s.KsqlDB.Requests("/query") - before; n < 3+4 {
		t.Errorf("%d pull queries; want 3 batches plus 4 rate-limited retries", n)
	}

	// ksqlDB not ready (503 / 50302) during the preflight: retried.
	s.KsqlDB.FailNext(2, http.StatusServiceUnavailable)
	if r := runJob(t, s); r.code != 0 {
		t.Fatalf("503 twice: exit %d, error %q", r.code, r.report.Error)
	}

	// ksqlDB keeps failing: unavailable (exit 7) before anything is written.
	acked := stored(s.Kafka)
	s.KsqlDB.FailNext(1000, http.StatusInternalServerError)
	r = runJob(t, s, "--ksqldb-retries=1")
	s.KsqlDB.FailNext(0, 0)
	if r.code != backfill.ExitUnavailable || r.report.RecordsProduced != 0 || stored(s.Kafka) != acked {
		t.Fatalf("persistent 500: exit %d, error %q, report %+v", r.code, r.report.Error, r.report)
	}

	// A statement_error (the table does not exist) is not retried: a
	// contract error naming the table, before anything is written.
	r = runJob(t, s, "--ksqldb-table=no_such_table")
	if r.code != backfill.ExitContract || !strings.Contains(r.report.Error, "no_such_table") || r.report.RecordsProduced != 0 {
		t.Fatalf("missing table: exit %d, error %q", r.code, r.report.Error)
	}
}

// TestHostileKsqlDBNamesAreQuoted configures stream and table names that
// would end the statement or inject another one if pasted unquoted. The
// preflight must address exactly those names (which do not exist) and fail
// with a contract error, not run anything else.
func TestHostileKsqlDBNamesAreQuoted(t *testing.T) {
	s := startStack(t, stack.Options{Users: 10})
	for _, name := range []string{"x`; DROP STREAM stream_order_insert; --", "t' OR '1'='1", "a\"b;\nTERMINATE ALL"} {
		for _, flag := range []string{"--ksqldb-stream=", "--ksqldb-table="} {
			r := runJob(t, s, "check", flag+name)
			// ksqlDB (the double parses statements as ksqlDB does) looked up
			// exactly this name: the statement was one DESCRIBE of one identifier.
			if r.code != backfill.ExitContract || !strings.Contains(r.report.Error, "Could not find STREAM/TABLE '"+name+"'") {
				t.Fatalf("%s%q: exit %d, error %q", flag, name, r.code, r.report.Error)
			}
		}
	}
	// The real stream and table are still there.
	if r := runJob(t, s, "check"); r.code != 0 {
		t.Fatalf("check after hostile names: exit %d, error %q", r.code, r.report.Error)
	}
}

// TestVerificationNeverStartsWhileKsqlDBMakesNoProgress: ksqlDB fetches
// the records but never processes them. The run fails with exit 6 once
// the lag has not shrunk for ksqldb.stall_timeout, although every record
// was acknowledged, and the report says both.
func TestVerificationNeverStartsWhileKsqlDBMakesNoProgress(t *testing.T) {
	s := startStack(t, stack.Options{Users: 100, KsqlLag: time.Hour})
	start := time.Now()
	r := runJob(t, s, "--ksqldb-stall-timeout=2s")
	rep := r.report
	if r.code != backfill.ExitVerify || rep.ErrorKind != "verify" || rep.RecordsAcked != 100 {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, r.stderr)
	}
	if rep.Verification != nil || len(rep.CatchUps) != 1 || rep.CatchUps[0].Status != "stalled" || rep.CatchUps[0].Lag != 100 {
		t.Fatalf("verification %+v, catch-ups %+v", rep.Verification, rep.CatchUps)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("a 2s stall bound took %s", d)
	}
}

// bq returns the sandbox's orders table name for queries.
func bq() string { return "`" + stack.Project + "." + stack.Dataset + "." + stack.Table + "`" }

// TestRepeatedKeysAreSentOnce feeds every order, not the minimum per
// user, from a query ending in a comment: the job runs
// it reduced to one row per user, so each user is sent once, with its
// minimum, and the NULL users make one skipped row.
func TestRepeatedKeysAreSentOnce(t *testing.T) {
	s := startStack(t, stack.Options{Users: 300, OrdersPerUser: 4})
	r := runJob(t, s, "--bigquery-query=SELECT user_id, order_id AS min_order_id FROM "+bq()+" -- every order, no GROUP BY")
	rep := r.report
	want := s.Expected()
	if len(s.Orders) <= len(want)+s.Options.NullUsers {
		t.Fatalf("the data has no repeated keys (%d orders, %d users)", len(s.Orders), len(want))
	}
	if r.code != 0 || rep.RowsRead != int64(len(want))+1 || rep.RowsSkipped["null_key"] != 1 || rep.RecordsAcked != int64(len(want)) {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, r.stderr)
	}
	if v := rep.Verification; v == nil || v.Checked != int64(len(want)) || v.Matched != int64(len(want)) {
		t.Fatalf("verification %+v", rep.Verification)
	}
	eachKeyOnce(t, s)
}

// TestExtraColumnsNeedAnExplicitMapping: MIN(order_id) AS min_order_id
// next to MAX(order_id) AS order_id are two candidates for ORDER_ID:
// refused, nothing written, until the mapping names one.
func TestExtraColumnsNeedAnExplicitMapping(t *testing.T) {
	s := startStack(t, stack.Options{Users: 200, OrdersPerUser: 4})
	query := "--bigquery-query=SELECT user_id, MIN(order_id) AS min_order_id, MAX(order_id) AS order_id FROM " + bq() + " GROUP BY user_id"
	r := runJob(t, s, query)
	if r.code != backfill.ExitContract || !strings.Contains(r.report.Error, `"min_order_id" and "order_id"`) || stored(s.Kafka) != 0 {
		t.Fatalf("exit %d, error %q, %d records stored", r.code, r.report.Error, stored(s.Kafka))
	}
	r = runJob(t, s, query, "--mapping-value-columns=ORDER_ID=min_order_id")
	want := int64(len(s.Expected()))
	if r.code != 0 || r.report.RecordsAcked != want || r.report.Verification == nil || r.report.Verification.Matched != want {
		t.Fatalf("exit %d, report %+v\n%s", r.code, r.report, r.stderr)
	}
	eachKeyOnce(t, s)
}

// TestExtremeIDsRoundTrip writes negative, zero and int64-extreme ids and
// proves with ksqlDB pull queries that the table holds them exactly.
// (Literal rows come from UNION ALL, not UNNEST([STRUCT(…)]): the BigQuery
// emulator passes arrays of structs through float64 and would round
// 9223372036854775807 and 2^53+1 itself.)
func TestExtremeIDsRoundTrip(t *testing.T) {
	s := startStack(t, stack.Options{Users: 10})
	query := "SELECT -5 AS user_id, 9223372036854775807 AS min_order_id" +
		" UNION ALL SELECT 9223372036854775807, -1" +
		" UNION ALL SELECT -9223372036854775807 - 1, -9223372036854775807 - 1" +
		" UNION ALL SELECT 0, 0" +
		" UNION ALL SELECT 9007199254740993, 9007199254740993"
	r := runJob(t, s, "--bigquery-query="+query)
	rep := r.report
	if r.code != 0 || rep.RowsRead != 5 || rep.RecordsAcked != 5 {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, r.stderr)
	}
	keys := consumeKeys(t, s.Kafka.ListenAddrs(), 5)
	for _, k := range []int64{-5, 9223372036854775807, -9223372036854775808, 0, 9007199254740993} {
		if keys[k] != 1 {
			t.Fatalf("key %d in the topic %d times: %v", k, keys[k], keys)
		}
	}
	if v := rep.Verification; v == nil || v.Matched != 5 || v.Checked != 5 {
		t.Fatalf("verification %+v", rep.Verification)
	}
}

// TestBadColumnTypesFailBeforeWriting: columns BigQuery returns with types
// the schemas cannot carry end the run with a contract error, nothing written.
func TestBadColumnTypesFailBeforeWriting(t *testing.T) {
	s := startStack(t, stack.Options{Users: 20})
	for name, query := range map[string]string{
		"float value":  "SELECT user_id, CAST(MIN(order_id) AS FLOAT64) AS min_order_id FROM " + bq() + " GROUP BY user_id",
		"string value": "SELECT user_id, CAST(MIN(order_id) AS STRING) AS min_order_id FROM " + bq() + " GROUP BY user_id",
		"bool key":     "SELECT user_id > 5 AS user_id, MIN(order_id) AS min_order_id FROM " + bq() + " GROUP BY 1",
		"array value":  "SELECT user_id, ARRAY_AGG(order_id) AS min_order_id FROM " + bq() + " GROUP BY user_id",
	} {
		r := runJob(t, s, "--bigquery-query="+query)
		if r.code != backfill.ExitContract || r.report.RecordsProduced != 0 || !strings.Contains(r.report.Error, "min_order_id") && !strings.Contains(r.report.Error, "user_id") {
			t.Errorf("%s: exit %d, error %q, produced %d", name, r.code, r.report.Error, r.report.RecordsProduced)
		}
	}
	if n := stored(s.Kafka); n != 0 {
		t.Fatalf("%d records written", n)
	}
}

// TestEmptyResultIsSuccessOnlyWhenAllowed: with pipeline.allow_empty an
// empty query result is a clear zero-row success.
func TestEmptyResultIsSuccessOnlyWhenAllowed(t *testing.T) {
	s := startStack(t, stack.Options{Users: 20})
	query := "--bigquery-query=SELECT user_id, MIN(order_id) AS min_order_id FROM " + bq() + " WHERE user_id < 0 GROUP BY user_id"
	r := runJob(t, s, query, "--pipeline-allow-empty")
	rep := r.report
	if r.code != 0 || rep.Status != "ok" || rep.RowsRead != 0 || rep.RecordsProduced != 0 || rep.RecordsAcked != 0 || rep.Error != "" {
		t.Fatalf("allowed empty result: exit %d, report %+v\n%s", r.code, rep, r.stderr)
	}
	if !strings.Contains(r.stdout, `"rows_read":0`) || !strings.Contains(r.stdout, `"records_acked":0`) {
		t.Fatalf("the zero-row report does not say so: %s", r.stdout)
	}
	r = runJob(t, s, query)
	if r.code != backfill.ExitContract || !strings.Contains(r.report.Error, "no rows") {
		t.Fatalf("empty result not allowed: exit %d, error %q", r.code, r.report.Error)
	}
	if n := stored(s.Kafka); n != 0 {
		t.Fatalf("%d records written", n)
	}
}

// TestSourceQueryErrorFailsBeforeWriting: BigQuery fails the query job
// (ERROR() raised while computing the result): nothing is written and the
// run fails as a source or query error. The emulator answers 400 as
// BigQuery does for ERROR(), which the job reports as a query to fix (2).
func TestSourceQueryErrorFailsBeforeWriting(t *testing.T) {
	s := startStack(t, stack.Options{Users: 20})
	r := runJob(t, s, "--bigquery-query=SELECT user_id, IF(user_id = 7, ERROR('boom at user 7'), MIN(order_id)) AS min_order_id FROM "+bq()+" GROUP BY user_id")
	if r.code == 0 || r.report.RecordsProduced != 0 || stored(s.Kafka) != 0 {
		t.Fatalf("exit %d, report %+v\n%s", r.code, r.report, r.stderr)
	}
	if r.code != backfill.ExitSource && r.code != backfill.ExitConfig {
		t.Fatalf("exit %d (%s): want a source (4) or query (2) failure: %s", r.code, r.report.ErrorKind, r.report.Error)
	}
	t.Logf("exit %d: %s", r.code, r.report.Error)
}

// TestUnreachableBrokerNamesBrokersWithinTimeout: several unreachable
// brokers, each named in the error, within the connect timeout.
func TestUnreachableBrokerNamesBrokersWithinTimeout(t *testing.T) {
	s := startStack(t, stack.Options{Users: 10})
	start := time.Now()
	r := runJob(t, s, "--kafka-brokers=127.0.0.1:1,127.0.0.1:2", "--kafka-connect-timeout=1500ms")
	if r.code != backfill.ExitUnavailable || !strings.Contains(r.report.Error, "127.0.0.1:1") || !strings.Contains(r.report.Error, "127.0.0.1:2") {
		t.Fatalf("exit %d, error %q", r.code, r.report.Error)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s with a 1.5s connect timeout", d)
	}
	if r.report.RecordsProduced != 0 || r.report.RowsRead != 0 {
		t.Fatalf("report %+v", r.report)
	}
}

// TestSIGTERMWithBrokerStuckReportsUndelivered interrupts a run while the
// broker holds every Produce request unanswered. The drain gives up after
// pipeline.drain_timeout, the job still exits 130 well within Kubernetes'
// 30 s grace period, and the report counts the unanswered records as
// undelivered rather than acknowledged.
func TestSIGTERMWithBrokerStuckReportsUndelivered(t *testing.T) {
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3})
	c := s.Kafka
	var requests atomic.Int64
	var stuck atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstick)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if stuck.Load() {
			c.SleepControl(func() { <-release })
		} else {
			time.Sleep(40 * time.Millisecond)
		}
		requests.Add(1)
		return nil, nil, false
	})
	j := startJob(t, s, nil, "--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=100",
		"--kafka-linger=1ms", "--pipeline-workers=1", "--pipeline-batch-size=20", "--pipeline-drain-timeout=1s")
	waitUntil(t, "records in the topic", j, func() bool { return requests.Load() >= 5 })
	stuck.Store(true)
	acked := stored(c)
	time.Sleep(300 * time.Millisecond) // records pile up unanswered
	start := time.Now()
	if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := j.wait(t)
	took := time.Since(start)
	rep := r.report
	if r.code != backfill.ExitInterrupted || rep.Status != "interrupted" {
		t.Fatalf("exit %d, status %q, error %q\n%s", r.code, rep.Status, rep.Error, r.stderr)
	}
	accounted(t, r)
	if rep.RecordsUndelivered == 0 || rep.RecordsAcked < acked {
		t.Fatalf("report %+v: want the held records undelivered (%d were acknowledged before the broker stuck)", rep, acked)
	}
	if took > 25*time.Second {
		t.Fatalf("the job took %s to exit after SIGTERM with a 1s drain timeout: Kubernetes would SIGKILL it", took)
	}
	t.Logf("exit after %s: %d produced, %d acknowledged, %d failed, %d undelivered", took.Round(time.Millisecond),
		rep.RecordsProduced, rep.RecordsAcked, rep.RecordsFailed, rep.RecordsUndelivered)
	// Undelivered means unknown, not lost: once the broker answers, the
	// topic holds at least the acknowledged records and never more than
	// were produced.
	unstick()
	time.Sleep(200 * time.Millisecond)
	if n := stored(c); n < rep.RecordsAcked || n > rep.RecordsProduced {
		t.Fatalf("the topic holds %d records; the report says %d acknowledged of %d produced", n, rep.RecordsAcked, rep.RecordsProduced)
	}
}

// TestRunTimeoutExitsWithSourceCodeNot130: the run's own timeout expiring
// while records flow is exit 4, as the README's table says; 130 is only
// for SIGTERM and SIGINT.
func TestRunTimeoutExitsWithSourceCodeNot130(t *testing.T) {
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3})
	_, fast := slowProduce(s, 100*time.Millisecond)
	defer fast()
	r := runJob(t, s, "--timeout=3s", "--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=100",
		"--kafka-linger=1ms", "--pipeline-workers=1", "--pipeline-batch-size=20", "--pipeline-drain-timeout=2s")
	if r.code != backfill.ExitSource || r.report.ErrorKind != "source" || !strings.Contains(r.report.Error, "timeout=3s") {
		t.Fatalf("exit %d, kind %q, error %q; want 4 naming the timeout\n%s", r.code, r.report.ErrorKind, r.report.Error, tail(r.stderr, 2000))
	}
	accounted(t, r)
}
