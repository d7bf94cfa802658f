package ksqlfake

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
)

const topic = "STREAM.ORDER.INSERT"

var keySchema, valueSchema = backfilltest.KsqlKeySchema, backfilltest.KsqlValueSchema

func newEnv(t *testing.T, partitions int32) *env {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	e := &env{t: t, cluster: c, reg: reg}
	if e.keyID, err = reg.Register(topic+"-key", keySchema); err != nil {
		t.Fatal(err)
	}
	if e.valueID, err = reg.Register(topic+"-value", valueSchema); err != nil {
		t.Fatal(err)
	}
	if e.prod, err = kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.prod.Close)
	return e
}

func wire(t *testing.T, id int, schema string, v any) []byte {
	t.Helper()
	body, err := avro.Marshal(avro.MustParse(schema), v)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, body...)
}

// waitFor polls cond; the fake consumes asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func post(t *testing.T, url, path, body string, accept string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.ksql.v1+json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func ksqlBody(stmt string) string {
	b, _ := json.Marshal(map[string]any{"ksql": stmt, "streamsProperties": map[string]any{}})
	return string(b)
}

// pullRows runs a pull query through /query and returns the rows' columns
// as exact JSON numbers.
func pullRows(t *testing.T, s *Server, stmt string) [][]json.Number {
	t.Helper()
	code, hdr, body := post(t, s.URL(), "/query", ksqlBody(stmt), "")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/query: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var elems []struct {
		Header *struct{ Schema string } `json:"header"`
		Row    *struct {
			Columns []json.Number `json:"columns"`
		} `json:"row"`
	}
	if err := dec.Decode(&elems); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(elems) == 0 || elems[0].Header == nil || elems[0].Header.Schema != "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT" {
		t.Fatalf("no header first: %s", body)
	}
	var rows [][]json.Number
	for _, e := range elems[1:] {
		rows = append(rows, e.Row.Columns)
	}
	return rows
}

func postOK(t *testing.T, s *Server, path, body string) (http.Header, string) {
	t.Helper()
	code, hdr, out := post(t, s.URL(), path, body, "")
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, code, out)
	}
	return hdr, out
}
