package k8s

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
	if err != nil || len(files) != 4 {
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
