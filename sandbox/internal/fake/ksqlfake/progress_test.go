package ksqlfake

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// describeExtended returns the table's sourceDescription from DESCRIBE … EXTENDED.
func describeExtended(t *testing.T, s *Server) map[string]any {
	t.Helper()
	_, body := postOK(t, s, "/ksql", ksqlBody("DESCRIBE `table_min_order` EXTENDED;"))
	var ents []map[string]any
	if err := json.Unmarshal([]byte(body), &ents); err != nil || len(ents) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	return ents[0]["sourceDescription"].(map[string]any)
}

// TestDescribeExtendedMatchesGolden pins the field names and nesting of
// queryOffsetSummaries to testdata/describe_extended_offsets.json, written
// from ksqldb-rest-model's QueryOffsetSummary (groupId, topicSummaries),
// QueryTopicOffsetSummary (kafkaTopic, offsets) and
// ConsumerPartitionOffsets (partition, logStartOffset, logEndOffset,
// consumerOffset) at confluentinc/ksql v0.29.0.
func TestDescribeExtendedMatchesGolden(t *testing.T) {
	e := newEnv(t, 3)
	s := e.start(func(c *Config) { c.CommitInterval = 50 * time.Millisecond })
	if got := describeExtended(t, s)["queryOffsetSummaries"]; !jsonEqual(t, got, []any{map[string]any{
		"groupId": "_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_1", "topicSummaries": []any{}}}) {
		t.Fatalf("before any commit: %v; want the query's group with no topic", got)
	}
	for i := range int64(3) {
		e.produce(0, e.key(i), e.value(10+i))
	}
	e.produce(2, e.key(9), e.value(90))
	waitFor(t, "a commit after four records", func() bool { c := s.Committed(); return c[0] == 3 && c[2] == 1 })
	got := describeExtended(t, s)["queryOffsetSummaries"]
	want, err := os.ReadFile(filepath.Join("testdata", "describe_extended_offsets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, w) {
		b, _ := json.MarshalIndent(got, "", "  ")
		t.Fatalf("queryOffsetSummaries:\n%s\nwant testdata/describe_extended_offsets.json:\n%s", b, want)
	}
	if d := describeExtended(t, s); d["extended"] != true {
		t.Errorf("extended = %v", d["extended"])
	}
	_, body := postOK(t, s, "/ksql", ksqlBody("DESCRIBE `table_min_order`;"))
	if !bytes.Contains([]byte(body), []byte(`"queryOffsetSummaries":[]`)) {
		t.Errorf("DESCRIBE without EXTENDED lists offsets: %s", body)
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ab, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var x, y any
	_ = json.Unmarshal(ab, &x)
	_ = json.Unmarshal(bb, &y)
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

func TestRateBoundsProcessingAndPullQueriesSeeOnlyProcessedRecords(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(c *Config) { c.Rate = 20 })
	for i := range int64(20) {
		e.produce(0, e.key(i), e.value(i))
	}
	waitFor(t, "fetching", func() bool { return s.Fetched() == 20 })
	start := time.Now()
	waitFor(t, "a first processed record", func() bool { return s.Processed() > 0 })
	if n := s.Processed(); n >= 20 {
		t.Fatalf("processed %d records at once at 20 records/s", n)
	}
	rows := pullRows(t, s, "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19);")
	if int64(len(rows)) > s.Processed() {
		t.Fatalf("pull query saw %d rows, only %d processed", len(rows), s.Processed())
	}
	waitFor(t, "all processed", func() bool { return s.Processed() == 20 })
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Fatalf("20 records at 20 records/s processed in %s", el)
	}
}

func TestCommittedOffsetsTrailProcessingByTheCommitInterval(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(c *Config) { c.CommitInterval = 700 * time.Millisecond })
	e.produce(0, e.key(1), e.value(1))
	waitFor(t, "processing", func() bool { return s.Processed() == 1 })
	seen := time.Now()
	waitFor(t, "the commit", func() bool { return s.Committed()[0] == 1 })
	if el := time.Since(seen); el > 800*time.Millisecond {
		t.Fatalf("committed %s after processing; the interval is 700ms", el)
	}
}

func TestPausedQueryCommitsNothingUntilResumed(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(c *Config) { c.Paused, c.CommitInterval = true, 20*time.Millisecond })
	e.produce(0, e.key(1), e.value(1))
	waitFor(t, "fetching", func() bool { return s.Fetched() == 1 })
	time.Sleep(100 * time.Millisecond)
	if s.Processed() != 0 || len(s.Committed()) != 0 {
		t.Fatalf("a paused query processed %d records and committed %v", s.Processed(), s.Committed())
	}
	s.Resume()
	waitFor(t, "the commit after Resume", func() bool { return s.Committed()[0] == 1 })
	s.Pause()
	e.produce(0, e.key(2), e.value(2))
	waitFor(t, "fetching", func() bool { return s.Fetched() == 2 })
	time.Sleep(100 * time.Millisecond)
	if c := s.Committed()[0]; c != 1 {
		t.Fatalf("committed %d while paused", c)
	}
}
