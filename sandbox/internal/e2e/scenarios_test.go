package e2e

import (
	"encoding/binary"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// wireKey is the Confluent wire-format key ksqlDB expects for a user.
func wireKey(schemaID uint32, user int64) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], schemaID)
	return binary.AppendVarint(b, user)
}

// kcatPartitions reads the whole topic with kcat, an outside client, and
// returns how many records each partition holds.
func kcatPartitions(t *testing.T, s *stack.Stack) map[int32]int {
	t.Helper()
	out, err := exec.Command("kcat", "-b", s.Settings()["kafka.brokers"], "-t", stack.Topic, "-C", "-e", "-q",
		"-o", "beginning", "-f", "%p %K %S\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	got := map[int32]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		p, _ := strconv.Atoi(f[0])
		if f[1] == "-1" || f[2] == "-1" {
			t.Fatalf("kcat saw a record with a null key or value: %q", line)
		}
		got[int32(p)]++
	}
	return got
}

func TestRerunGivesTheSameResultAndKcatSeesJavaPartitions(t *testing.T) {
	s := startStack(t, stack.Options{Users: 800, Partitions: 5})
	first := runJob(t, s)
	second := runJob(t, s, "--mode=full")
	if first.report.Mode != "full" || second.report.Mode != "full" {
		t.Fatalf("modes %q, %q; want full (auto on an empty table, then explicit)", first.report.Mode, second.report.Mode)
	}
	for i, r := range []result{first, second} {
		if r.code != 0 || r.report.Verification == nil || r.report.Verification.Matched != int64(len(s.Expected())) {
			t.Fatalf("run %d: exit %d, report %+v\n%s", i+1, r.code, r.report, r.stderr)
		}
	}
	a, b := first.report, second.report
	if a.RowsRead != b.RowsRead || a.RecordsAcked != b.RecordsAcked || a.Bytes != b.Bytes {
		t.Fatalf("rerun differs: %+v vs %+v", a, b)
	}
	// The topic now holds every record twice, each on the partition
	// Java's murmur2 picks for its serialized key.
	want := map[int32]int{}
	for user := range s.Expected() {
		want[murmur2.Partition(wireKey(uint32(a.KeySchemaID), user), 5)] += 2
	}
	got := kcatPartitions(t, s)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records per partition (kcat) = %v, murmur2 expects %v", got, want)
	}
}

func TestDryRunProducesNothing(t *testing.T) {
	s := startStack(t, stack.Options{Users: 300})
	r := runJob(t, s, "--dry-run")
	if r.code != 0 || !r.report.DryRun || r.report.RecordsEncoded != 300 || r.report.RecordsProduced != 0 || r.report.Verification != nil {
		t.Fatalf("exit %d, report %+v\n%s", r.code, r.report, r.stderr)
	}
	if got := kcatPartitions(t, s); len(got) != 0 {
		t.Fatalf("dry run wrote records: %v", got)
	}
}

func TestNullValuesAreSkippedAndCounted(t *testing.T) {
	s := startStack(t, stack.Options{Users: 400})
	query := "SELECT user_id, IF(MOD(user_id, 10) = 0, NULL, MIN(order_id)) AS min_order_id FROM `" +
		s.Settings()["bigquery.table"] + "` GROUP BY user_id"
	r := runJob(t, s, "--bigquery-query="+query)
	rep := r.report
	if r.code != 0 || rep.RowsRead != 401 || rep.RowsSkipped["null_key"] != 1 || rep.RowsSkipped["null_value"] != 40 ||
		rep.RecordsAcked != 360 || rep.Verification.Matched != 360 {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, r.stderr)
	}
}

func TestContractFailuresWriteNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		opts  stack.Options
		args  []string
		code  int
		words string
	}{
		"mistyped key column": {stack.Options{Users: 50}, []string{"--bigquery-query=SELECT CAST(user_id AS STRING) AS user_id, MIN(order_id) AS min_order_id FROM `" +
			stack.Project + "." + stack.Dataset + "." + stack.Table + "` GROUP BY user_id"}, backfill.ExitContract, "column type is STRING"},
		"missing value column": {stack.Options{Users: 50}, []string{"--bigquery-query=SELECT user_id, MIN(order_id) AS first FROM `" +
			stack.Project + "." + stack.Dataset + "." + stack.Table + "` GROUP BY user_id"}, backfill.ExitContract, "value field ORDER_ID"},
		"missing subject": {stack.Options{Users: 50, NoSubjects: true}, nil, backfill.ExitContract, "STREAM.ORDER.INSERT-key"},
		"missing topic":   {stack.Options{Users: 50}, []string{"--kafka-topic=NOT.THERE", "--ksqldb-preflight=false"}, backfill.ExitContract, "NOT.THERE"},
		"bad setting":     {stack.Options{Users: 50}, []string{"--pipeline-workers=0"}, backfill.ExitConfig, "pipeline.workers"},
		"empty result": {stack.Options{Users: 50}, []string{"--bigquery-query=SELECT user_id, order_id FROM `" +
			stack.Project + "." + stack.Dataset + "." + stack.Table + "` WHERE user_id < 0"}, backfill.ExitContract, "no rows"},
	} {
		t.Run(name, func(t *testing.T) {
			s := startStack(t, tc.opts)
			r := runJob(t, s, tc.args...)
			if r.code != tc.code || !strings.Contains(r.report.Error, tc.words) {
				t.Fatalf("exit %d (want %d), error %q (want %q)\n%s", r.code, tc.code, r.report.Error, tc.words, r.stderr)
			}
			if r.report.RecordsProduced != 0 {
				t.Fatalf("produced %d records", r.report.RecordsProduced)
			}
			if name != "missing topic" {
				if got := kcatPartitions(t, s); len(got) != 0 {
					t.Fatalf("records written: %v", got)
				}
			}
		})
	}
}

func TestUnreachableBrokerFailsFast(t *testing.T) {
	s := startStack(t, stack.Options{Users: 20})
	r := runJob(t, s, "--kafka-brokers=127.0.0.1:1", "--kafka-connect-timeout=2s")
	if r.code != backfill.ExitUnavailable || !strings.Contains(r.report.Error, "127.0.0.1:1") {
		t.Fatalf("exit %d, error %q", r.code, r.report.Error)
	}
}

func TestCheckRunsPreflightOnly(t *testing.T) {
	s := startStack(t, stack.Options{Users: 20})
	r := runJob(t, s, "check")
	if r.code != 0 || r.report.RowsRead != 0 || r.report.Partitions != 3 {
		t.Fatalf("exit %d, report %+v\n%s", r.code, r.report, r.stderr)
	}
	// The query ran as a dry run only: its result's columns, bound to the
	// schemas, and the bytes it will process are reported.
	if c := r.report.SourceCheck; c == nil || strings.Join(c.Columns, ",") != "user_id INT64,min_order_id INT64" {
		t.Fatalf("source_check %+v: want the query's columns from a dry run", r.report.SourceCheck)
	}
	bad := runJob(t, s, "check", "--ksqldb-table=no_such_table")
	if bad.code != backfill.ExitContract || !strings.Contains(bad.report.Error, "no_such_table") {
		t.Fatalf("exit %d, error %q", bad.code, bad.report.Error)
	}
}

func TestDeltaModeProducesOnlyWhatTheTableLacks(t *testing.T) {
	s := startStack(t, stack.Options{Users: 600, Partitions: 3})
	table := "`" + s.Settings()["bigquery.table"] + "`"
	// A first backfill that missed users above 400 (lost, as after binlog loss).
	part := runJob(t, s, "--bigquery-query=SELECT user_id, MIN(order_id) AS min_order_id FROM "+table+" WHERE user_id <= 400 GROUP BY user_id")
	if part.code != 0 || part.report.Mode != "full" || part.report.RecordsAcked != 400 {
		t.Fatalf("first run: exit %d, report %+v\n%s", part.code, part.report, part.stderr)
	}
	// The rerun (mode auto: the table has rows) sends only the 200 missing users.
	r := runJob(t, s)
	rep := r.report
	if r.code != 0 || rep.Mode != "delta" || rep.RecordsAcked != 200 || rep.Delta == nil ||
		rep.Delta.Missing != 200 || rep.Delta.AlreadyPresent != 400 || rep.RowsSkipped["in_table"] != 400 {
		t.Fatalf("delta rerun: exit %d, report %+v delta %+v\n%s", r.code, rep, rep.Delta, r.stderr)
	}
	keys := consumeKeys(t, s.Kafka.ListenAddrs(), 600)
	for user := range s.Expected() {
		if keys[user] != 1 {
			t.Fatalf("user %d written %d times", user, keys[user])
		}
	}
	// Once the table is current, a rerun produces nothing.
	again := runJob(t, s, "--mode=delta")
	if again.code != 0 || again.report.RecordsProduced != 0 || again.report.Delta.AlreadyPresent != 600 {
		t.Fatalf("rerun on a current table: exit %d, report %+v delta %+v", again.code, again.report, again.report.Delta)
	}
}
