package manifests_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Only the stream's migration sets PARTITIONS: the table (CREATE … AS
// SELECT) then inherits the stream topic's count, so the join of V000003
// sees equal counts whatever count a user gives V000001. ksqlDB copies the
// primary source's partitions into a CTAS/CSAS topic without PARTITIONS
// (engine/topic/TopicCreateInjector.java, TopicProperties.java,
// v0.15.0-ksqldb to v8.3.1) and refuses a join of unequal counts
// (engine/planner/plan/JoinNode.java).
func TestOnlyTheStreamMigrationSetsPartitions(t *testing.T) {
	files, err := filepath.Glob("ksql-migrations/migrations/V*.sql")
	if err != nil || len(files) != 8 {
		t.Fatalf("migrations: %v %v", files, err)
	}
	partitions := regexp.MustCompile(`(?i)\bpartitions\s*=`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sql []string // statements without comments
		for _, line := range strings.Split(string(raw), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "--") {
				sql = append(sql, line)
			}
		}
		set := partitions.MatchString(strings.Join(sql, "\n"))
		if stream := strings.HasPrefix(filepath.Base(f), "V000001__"); set != stream {
			t.Errorf("%s: sets PARTITIONS = %v; only V000001 (the stream) may", f, set)
		}
	}
}

// The migrations tool finds migrations/ next to its properties file
// (MigrationsDirectoryUtil.java, v0.17.0-ksqldb to v8.3.1), so the README
// renders the properties file into this directory, never elsewhere.
func TestMigrationsReadmeRendersThePropertiesBesideMigrations(t *testing.T) {
	raw, err := os.ReadFile("ksql-migrations/README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if strings.Contains(s, "/tmp/ksql-migrations.properties") {
		t.Error("README renders the properties file outside the directory holding migrations/: the tool would find no migrations")
	}
	if !strings.Contains(s, "ksql.migrations.dir.override") {
		t.Error("README does not mention ksql.migrations.dir.override for a rendered file elsewhere")
	}
}

// The counting pipeline holds only with the record cache off and
// exactly-once on its table's query, and exactly-once, from the latest
// offset, on its announcer (see the migrations README).
func TestCountingPipelineSettings(t *testing.T) {
	want := map[string][]string{
		"V000006__create_table_first_order.sql": {"SET 'cache.max.bytes.buffering'='0';", "SET 'processing.guarantee'='exactly_once_v2';",
			"SET 'auto.offset.reset'='earliest';", "COUNT(*) AS order_count"},
		"V000008__create_stream_first_order.sql": {"SET 'processing.guarantee'='exactly_once_v2';", "SET 'auto.offset.reset'='latest';",
			"WHERE order_count = 1"},
	}
	for name, lines := range want {
		raw, err := os.ReadFile(filepath.Join("ksql-migrations/migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if !strings.Contains(string(raw), l) {
				t.Errorf("%s lacks %q", name, l)
			}
		}
	}
	raw, err := os.ReadFile("ksql-migrations/migrations/V000007__create_stream_first_order_changes.sql")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?im)^\s*CREATE STREAM[^;]*\bAS\s+SELECT`).Match(raw) {
		t.Error("V000007 must be a plain CREATE STREAM over the table's topic: ksqlDB refuses CREATE STREAM AS SELECT from a table")
	}
}
