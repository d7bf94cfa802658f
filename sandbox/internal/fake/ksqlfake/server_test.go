package ksqlfake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
)

// env is a kfake cluster, a registry seeded with ksqlDB's schemas and a
// producer that picks partitions itself.
type env struct {
	t              *testing.T
	cluster        *kfake.Cluster
	reg            *srfake.Server
	keyID, valueID int
	prod           *kgo.Client
}

func (e *env) start(mod func(*Config)) *Server {
	e.t.Helper()
	cfg := Config{Brokers: e.cluster.ListenAddrs(), Registry: e.reg, RegistryURL: e.reg.URL(), Topic: topic}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Close)
	return s
}

func (e *env) key(k int64) []byte { return wire(e.t, e.keyID, keySchema, k) }

func (e *env) value(v int64) []byte {
	return wire(e.t, e.valueID, valueSchema, map[string]any{"ORDER_ID": v})
}

// produce writes raw records; partition -1 means where ksqlDB expects it.
func (e *env) produce(partition int32, key, value []byte) {
	e.t.Helper()
	if partition < 0 {
		partition = murmur2.Partition(key, 3)
	}
	r := &kgo.Record{Topic: topic, Partition: partition, Key: key, Value: value}
	if err := e.prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

func TestPullQueryRoutesByMurmur2OfTheSerializedKey(t *testing.T) {
	e := newEnv(t, 3)
	s := e.start(nil)
	right := e.key(5)
	wrong := (murmur2.Partition(e.key(6), 3) + 1) % 3
	e.produce(-1, right, e.value(100))
	e.produce(wrong, e.key(6), e.value(200))
	waitFor(t, "both records consumed", func() bool { return s.Processed() == 2 })

	rows := pullRows(t, s, "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (5,6);")
	if len(rows) != 1 || rows[0][0] != "5" || rows[0][1] != "100" {
		t.Fatalf("rows = %v; want only key 5 (key 6 sits on partition %d, not where murmur2 routes it)", rows, wrong)
	}
	// The unquoted key column resolves to ACCOUNT_ID as in ksqlDB.
	if rows := pullRows(t, s, "SELECT * FROM `table_min_order` WHERE account_id = 5;"); len(rows) != 1 {
		t.Fatalf("unquoted key column: %v", rows)
	}
}

func TestTableKeepsMinPerKeyAndExactBigints(t *testing.T) {
	e := newEnv(t, 3)
	s := e.start(nil)
	big := int64(1)<<53 + 1 // not representable as float64
	for _, v := range []int64{big + 10, big, big + 5} {
		e.produce(-1, e.key(big), e.value(v))
	}
	e.produce(-1, e.key(7), wire(t, e.valueID, valueSchema, map[string]any{"ORDER_ID": nil}))
	waitFor(t, "records consumed", func() bool { return s.Processed() == 4 })
	rows := pullRows(t, s, "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (9007199254740993, 7);")
	got := map[string]string{}
	for _, r := range rows {
		got[r[0].String()] = r[1].String()
	}
	if got["9007199254740993"] != "9007199254740993" {
		t.Errorf("MIN for 2^53+1 = %q, want 9007199254740993 (rows %v)", got["9007199254740993"], rows)
	}
	_, body := postOK(t, s, "/query", ksqlBody("SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (7);"))
	if !strings.Contains(body, `"columns":[7,null]`) {
		t.Errorf("a key with only NULL values: %s", body)
	}
}

func TestUndecodableRecordsAreDropped(t *testing.T) {
	e := newEnv(t, 3)
	s := e.start(nil)
	good := e.value(1)
	badMagic := append([]byte{1}, good[1:]...)
	unknownID := wire(t, 9999, valueSchema, map[string]any{"ORDER_ID": int64(1)})
	truncated := good[:len(good)-1]
	keyAsValueSchema := wire(t, e.valueID, valueSchema, map[string]any{"ORDER_ID": int64(5)}) // a record body where a long is expected: 02 0a
	e.produce(-1, e.key(1), badMagic)
	e.produce(-1, e.key(2), unknownID)
	e.produce(-1, e.key(3), truncated)
	e.produce(-1, keyAsValueSchema, good)
	e.produce(-1, e.key(4), nil) // tombstone
	e.produce(-1, e.key(5), good)
	waitFor(t, "all records consumed", func() bool { return s.Processed()+s.Dropped() == 6 })
	if s.Dropped() != 5 || s.Processed() != 1 {
		t.Fatalf("dropped %d, processed %d; want 5 and 1", s.Dropped(), s.Processed())
	}
	if rows := pullRows(t, s, "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1,2,3,4,5);"); len(rows) != 1 || rows[0][0] != "5" {
		t.Fatalf("rows = %v; want only key 5", rows)
	}
}

func TestOffsetReset(t *testing.T) {
	e := newEnv(t, 1)
	e.produce(0, e.key(1), e.value(10)) // before the query starts
	latest := e.start(nil)
	earliest := e.start(func(c *Config) { c.OffsetReset = "earliest" })
	e.produce(0, e.key(2), e.value(20))
	waitFor(t, "consumption", func() bool { return latest.Processed() == 1 && earliest.Processed() == 2 })
	stmt := "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1,2);"
	if rows := pullRows(t, latest, stmt); len(rows) != 1 || rows[0][0] != "2" {
		t.Errorf("latest: rows %v; want only key 2, written after the query started", rows)
	}
	if rows := pullRows(t, earliest, stmt); len(rows) != 2 {
		t.Errorf("earliest: rows %v; want both keys", rows)
	}
}

func TestLagHidesConsumedRecords(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(c *Config) { c.Lag = time.Hour })
	e.produce(0, e.key(1), e.value(10))
	waitFor(t, "consumption", func() bool { return s.Fetched() == 1 })
	if rows := pullRows(t, s, "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1);"); len(rows) != 0 {
		t.Fatalf("a record consumed but still within the lag is visible: %v", rows)
	}
}

func TestDescribeResolvesNamesLikeKsqlDB(t *testing.T) {
	e := newEnv(t, 3)
	s := e.start(nil)
	hdr, body := postOK(t, s, "/ksql", ksqlBody("DESCRIBE `stream_order_insert`;"))
	if hdr.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
	}
	var ents []struct {
		Type string `json:"@type"`
		D    struct {
			Name, Topic, KeyFormat, ValueFormat, Type string
			Partitions                                int
			Fields                                    []struct{ Name, Type string }
			ReadQueries                               []struct {
				Sinks []string
				State string
			}
		} `json:"sourceDescription"`
	}
	if err := json.Unmarshal([]byte(body), &ents); err != nil || len(ents) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	d := ents[0].D
	if ents[0].Type != "sourceDescription" || d.Name != "stream_order_insert" || d.Topic != topic || d.KeyFormat != "AVRO" || d.Partitions != 3 ||
		len(d.Fields) != 2 || d.Fields[0].Type != "KEY" || len(d.ReadQueries) != 1 || d.ReadQueries[0].Sinks[0] != "table_min_order" || d.ReadQueries[0].State != "RUNNING" {
		t.Errorf("stream description: %+v", d)
	}
	code, _, body := post(t, s.URL(), "/ksql", ksqlBody("DESCRIBE stream_order_insert;"), "")
	if code != 400 || !strings.Contains(body, `"error_code":40001`) || !strings.Contains(body, "Could not find STREAM/TABLE 'STREAM_ORDER_INSERT' in the Metastore") ||
		!strings.Contains(body, `"@type":"statement_error"`) {
		t.Errorf("unquoted lower-case name: %d %s", code, body)
	}

	upper := e.start(func(c *Config) { c.Stream, c.Table = "STREAM_ORDER_INSERT", "TABLE_MIN_ORDER" })
	postOK(t, upper, "/ksql", ksqlBody("describe stream_order_insert extended;"))
	postOK(t, upper, "/ksql", ksqlBody("DESCRIBE `TABLE_MIN_ORDER`;"))
}

func TestTableScans(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(nil)
	code, _, body := post(t, s.URL(), "/query", ksqlBody("SELECT * FROM `table_min_order` LIMIT 1;"), "")
	if code != 200 || strings.Contains(body, `"row"`) {
		t.Errorf("scan of an empty table: %d %s", code, body)
	}
	off := e.start(func(c *Config) { c.Version = "7.0.0" }) // Confluent Platform 7.0 ships scans off
	code, _, body = post(t, off.URL(), "/query", ksqlBody("SELECT * FROM `table_min_order`;"), "")
	if code != 400 || !strings.Contains(body, `"error_code":40001`) {
		t.Errorf("scan with scans disabled: %d %s", code, body)
	}
}

func TestUnsupportedStatementsAndFaults(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(nil)
	for _, stmt := range []string{
		"SELECT * FROM `table_min_order` LIMIT x;",
		"SELECT * FROM `table_min_order` WHERE `MIN_ORDER_ID` IN (1);",
		"SELECT * FROM `stream_order_insert` WHERE `ACCOUNT_ID` IN (1);",
		"SELECT * FROM table_min_order WHERE `ACCOUNT_ID` IN (1);",
		"SHOW STREAMS;",
		"SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1,",
	} {
		code, _, body := post(t, s.URL(), "/query", ksqlBody(stmt), "")
		if code != 400 || !strings.Contains(body, `"error_code":40001`) {
			t.Errorf("%s: %d %s; want statement_error 40001", stmt, code, body)
		}
	}
	s.RateLimitNext(1)
	if code, hdr, body := post(t, s.URL(), "/query", ksqlBody("SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1);"), ""); code != 429 ||
		!strings.Contains(body, `"error_code":42900`) || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("rate limit: %d %s", code, body)
	}
	s.FailNext(1, 503)
	if code, _, body := post(t, s.URL(), "/ksql", ksqlBody("DESCRIBE `stream_order_insert`;"), ""); code != 503 || !strings.Contains(body, `"error_code":50302`) {
		t.Errorf("not ready: %d %s", code, body)
	}
	postOK(t, s, "/ksql", ksqlBody("DESCRIBE `stream_order_insert`;"))
}

func TestQueryStreamForms(t *testing.T) {
	e := newEnv(t, 3)
	s := e.start(nil)
	e.produce(-1, e.key(8), e.value(80))
	waitFor(t, "consumption", func() bool { return s.Processed() == 1 })
	body, _ := json.Marshal(map[string]any{"sql": "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (8, 9);", "properties": map[string]any{}})

	code, hdr, out := post(t, s.URL(), "/query-stream", string(body), delimited)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 200 || hdr.Get("Content-Type") != delimited || len(lines) != 2 || lines[1] != "[8,80]" ||
		!strings.Contains(lines[0], `"columnNames":["ACCOUNT_ID","MIN_ORDER_ID"]`) {
		t.Errorf("delimited: %d %q %q", code, hdr.Get("Content-Type"), out)
	}
	code, _, out = post(t, s.URL(), "/query-stream", string(body), "application/json")
	var arr []json.RawMessage
	if code != 200 || json.Unmarshal([]byte(out), &arr) != nil || len(arr) != 2 || !bytes.Equal(arr[1], []byte("[8,80]")) {
		t.Errorf("json form: %d %s", code, out)
	}

	old := e.start(func(c *Config) { c.Version = "0.23.1" })
	if code, _, out := post(t, old.URL(), "/query-stream", string(body), delimited); code != http.StatusBadRequest || !strings.Contains(out, `"error_code":40004`) {
		t.Errorf("0.23 over HTTP/1.1: %d %s; want 400 / 40004", code, out)
	}
}

func TestBasicAuth(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(c *Config) { c.Username, c.Password = "job", "s3cret" })
	code, _, body := post(t, s.URL(), "/ksql", ksqlBody("DESCRIBE `stream_order_insert`;"), "")
	if code != 401 || !strings.Contains(body, `"error_code":40100`) {
		t.Fatalf("no credentials: %d %s", code, body)
	}
}

func TestNewRejectsAMissingTopic(t *testing.T) {
	e := newEnv(t, 1)
	_, err := New(Config{Brokers: e.cluster.ListenAddrs(), Registry: e.reg, KeySchemaID: e.keyID, Topic: "NO.SUCH.TOPIC"})
	if err == nil || !strings.Contains(err.Error(), "NO.SUCH.TOPIC") {
		t.Fatalf("err = %v", err)
	}
}
