package ksqldb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Fuzz targets for what the client reads from ksqlDB (pull-query answers
// of /query and /query-stream, the header schema) and for the statements it
// builds from configuration. Run one with, for example:
//
//	go test -run='^$' -fuzz='^FuzzPullAnswer$' -fuzztime=60s ./backfill/ksqldb/
//
// testdata/fuzz/<FuzzName> holds hand-written seeds beside the f.Add ones;
// the corpus a fuzzing run grows stays in the Go build cache. An input that
// finds a bug is committed there, named for it.

// bodyTransport answers every request with one canned 200 body.
type bodyTransport struct {
	body        []byte
	contentType string
}

func (b bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": []string{b.contentType}},
		Body:    io.NopCloser(bytes.NewReader(b.body)),
		Request: req,
	}, nil
}

// cannedClient is a client whose every request gets body, with no retries.
func cannedClient(t testing.TB, body []byte) *Client {
	c, err := New(Config{URL: "http://ksqldb.invalid:8088", Timeout: 1e9, Stream: "stream_order_insert", Table: "table_min_order"})
	if err != nil {
		t.Fatal(err)
	}
	c.hc.HTTP = &http.Client{Transport: bodyTransport{body: body, contentType: "application/json"}}
	return c
}

var fuzzFacts = Facts{Table: "table_min_order", TableKeyColumn: "ACCOUNT_ID", TableValueColumn: "MIN_ORDER_ID"}

func FuzzPullAnswer(f *testing.F) {
	for _, seed := range []string{
		`[{"header":{"queryId":"q1","schema":"` + "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT" + `"}},{"row":{"columns":[1,97]}},{"row":{"columns":[2,null]}}]`,
		`[{"header":{"queryId":"q1","schema":"` + "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT" + `"}},{"row":{"columns":[9223372036854775807,-9223372036854775808]}}]`,
		`{"queryId":"q2","columnNames":["ACCOUNT_ID","MIN_ORDER_ID"],"columnTypes":["BIGINT","BIGINT"]}` + "\n[1,2]\n[1,1]\n",
		`[{"queryId":"q3","columnNames":["ACCOUNT_ID","MIN_ORDER_ID"],"columnTypes":["BIGINT","BIGINT"]},[1,9007199254740993]]`,
		`{"@type":"generic_error","error_code":50000,"message":"boom"}`,
		`[{"header":{"schema":"` + "`K` BIGINT KEY" + `"}},{"errorMessage":{"@type":"generic_error","error_code":40001,"message":"bad"}}]`,
		`{"queryId":"q","columnNames":["ACCOUNT_ID","MIN_ORDER_ID"]}` + "\n" + `{"@type":"generic_error","error_code":42900,"message":"rate"}`,
		`[{"row":{"columns":[1,2]}}]`,
		`[{"header":{"schema":"ACCOUNT_ID BIGINT KEY, MIN_ORDER_ID BIGINT"}},{"row":{"columns":[1.5,2e3]}}]`,
		`[{"header":{"schema":"` + "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT" + `"}},{"row":{"columns":["1",2]}}]`,
		`[]`, ``, `[`, `{}`, `null`, "\n\n", `[{"header":{"schema":"` + "`a``b` STRUCT<`X` INTEGER, `Y` DECIMAL(4, 2)>" + `"}}]`,
		`[{"header":{"schema":"` + "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT" + `"}},{"row":{"columns":[1,2]}}]garbage`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, stream bool) {
		c := cannedClient(t, body)
		rows, err := c.pull(context.Background(), &fuzzFacts, []int64{1, 2}, stream)
		if err != nil {
			// Every failure is classified for the exit code; none is a bug.
			if k := backfill.KindOf(err); k == backfill.KindUnclassified || k == backfill.KindInternal {
				t.Fatalf("unclassified error for body %q: %v", body, err)
			}
			return
		}
		// A value the parser returns was written in the body as that exact
		// integer: no float64 round trip, no invented rows.
		for k, cell := range rows {
			if !bytes.Contains(body, []byte(strconv.FormatInt(k, 10))) {
				t.Fatalf("key %d is not in the body %q", k, body)
			}
			if !cell.null && !bytes.Contains(body, []byte(strconv.FormatInt(cell.value, 10))) {
				t.Fatalf("value %d (key %d) is not in the body %q", cell.value, k, body)
			}
		}
	})
}

// FuzzPullRoundTrip builds well-formed answers of each form from fuzzed
// rows and column names, and checks that the client reads back exactly
// the MIN per key, bigints included.
func FuzzPullRoundTrip(f *testing.F) {
	f.Add(int64(1), int64(97), int64(2), int64(5), false, "ACCOUNT_ID", "MIN_ORDER_ID", uint8(0))
	f.Add(int64(math.MaxInt64), int64(math.MinInt64), int64(math.MaxInt64), int64(3), true, "user_id", "min_order_id", uint8(1))
	f.Add(int64(9007199254740993), int64(9007199254740993), int64(-1), int64(0), false, "a`b", "with space, comma", uint8(2))
	f.Add(int64(7), int64(9), int64(7), int64(8), false, "K", "V <x>(y)", uint8(0))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 int64, v2null bool, keyCol, valCol string, form uint8) {
		if keyCol == "" || valCol == "" || strings.EqualFold(keyCol, valCol) || !utf8.ValidString(keyCol) || !utf8.ValidString(valCol) {
			return
		}
		var second any = v2
		if v2null {
			second = nil
		}
		rows := [][2]any{{k1, v1}, {k2, second}}
		want := map[int64]cell{k1: {value: v1}}
		if old, ok := want[k2]; !ok {
			want[k2] = cell{value: v2}
			if v2null {
				want[k2] = cell{null: true}
			}
		} else if !v2null && v2 < old.value {
			want[k2] = cell{value: v2}
		}
		var b strings.Builder
		js := func(v any) string { out, _ := json.Marshal(v); return string(out) }
		switch form % 3 {
		case 0: // POST /query
			schema := QuoteIdentifier(keyCol) + " BIGINT KEY, " + QuoteIdentifier(valCol) + " BIGINT"
			b.WriteString(`[{"header":{"queryId":"q","schema":` + js(schema) + `}}`)
			for _, r := range rows {
				b.WriteString(`,{"row":{"columns":` + js(r[:]) + `}}`)
			}
			b.WriteString("]")
		case 1: // POST /query-stream, delimited
			b.WriteString(`{"queryId":"q","columnNames":` + js([]string{keyCol, valCol}) + `,"columnTypes":["BIGINT","BIGINT"]}` + "\n")
			for _, r := range rows {
				b.WriteString(js(r[:]) + "\n")
			}
		case 2: // POST /query-stream, JSON
			b.WriteString(`[{"queryId":"q","columnNames":` + js([]string{keyCol, valCol}) + `,"columnTypes":["BIGINT","BIGINT"]}`)
			for _, r := range rows {
				b.WriteString("," + js(r[:]))
			}
			b.WriteString("]")
		}
		facts := Facts{Table: "t", TableKeyColumn: keyCol, TableValueColumn: valCol}
		got, err := cannedClient(t, []byte(b.String())).pull(context.Background(), &facts, []int64{k1, k2}, form%3 != 0)
		if err != nil {
			t.Fatalf("form %d: %v\nbody: %s", form%3, err, b.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("form %d: got %v, want %v\nbody: %s", form%3, got, want, b.String())
		}
	})
}

// FuzzSchemaColumns: arbitrary header schemas never panic, and a schema
// built from quoted names yields those names back.
func FuzzSchemaColumns(f *testing.F) {
	f.Add("ACCOUNT_ID\x00MIN_ORDER_ID", uint8(0))
	f.Add("a`b\x00S\x00Z", uint8(5))
	f.Add("with space, comma (paren)\x00x<y>", uint8(3))
	f.Add("", uint8(1))
	types := []string{"BIGINT", "BIGINT KEY", "STRING", "ARRAY<BIGINT>", "MAP<STRING, BIGINT>", "DECIMAL(10, 2)", "STRUCT<`A` INTEGER, `B` DECIMAL(4, 2)>"}
	f.Fuzz(func(t *testing.T, in string, typeSeed uint8) {
		_ = schemaColumns(in) // arbitrary text: no panic
		names := strings.Split(in, "\x00")
		if len(names) > 6 {
			return
		}
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = QuoteIdentifier(n) + " " + types[(int(typeSeed)+i)%len(types)]
		}
		got := schemaColumns(strings.Join(parts, ", "))
		if strings.Join(got, "\x00") != in || len(got) != len(names) {
			t.Fatalf("schemaColumns(%q) = %q, want %q", strings.Join(parts, ", "), got, names)
		}
	})
}

// token is one lexeme of a ksqlDB statement, for checking quoting.
type token struct {
	kind byte // 'i' identifier (backquoted), 'w' word, 's' string literal, 'n' number, or the punctuation itself
	text string
}

// lexKsql splits a statement as ksqlDB's grammar does for the parts the
// client uses: backquoted identifiers (a backquote inside is doubled),
// single-quoted strings (a single quote inside is doubled), words, integers
// and punctuation. It fails on anything else.
func lexKsql(stmt string) ([]token, error) {
	var out []token
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == ' ':
			i++
		case c == '`' || c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(stmt) {
					return nil, fmt.Errorf("unterminated %c at %d", c, i)
				}
				if stmt[j] == c {
					if j+1 < len(stmt) && stmt[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(stmt[j])
				j++
			}
			kind := byte('i')
			if c == '\'' {
				kind = 's'
			}
			out = append(out, token{kind, b.String()})
			i = j + 1
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i
			for j < len(stmt) && (stmt[j] >= 'A' && stmt[j] <= 'Z' || stmt[j] >= 'a' && stmt[j] <= 'z' || stmt[j] == '_') {
				j++
			}
			out = append(out, token{'w', stmt[i:j]})
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(stmt) && stmt[j] >= '0' && stmt[j] <= '9' {
				j++
			}
			out = append(out, token{'n', stmt[i:j]})
			i = j
		case strings.IndexByte("*(),;=", c) >= 0:
			out = append(out, token{c, string(c)})
			i++
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return out, nil
}

// FuzzStatementQuoting: whatever the configured names, the statements the
// client builds are the intended statement with those names as single
// identifiers: no name can end the identifier or add a statement.
func FuzzStatementQuoting(f *testing.F) {
	for _, s := range []string{"stream_order_insert", "x`; DROP STREAM s; --", "`", "``", "a'b", "it's", "t' OR '1'='1", "line\nbreak", "uni ☃ code", ";", ""} {
		f.Add(s, "ACCOUNT_ID", int64(-5))
		f.Add("table_min_order", s, int64(9223372036854775807))
	}
	f.Fuzz(func(t *testing.T, table, key string, id int64) {
		if !utf8.ValidString(table) || !utf8.ValidString(key) {
			return // names reach ksqlDB inside JSON, which carries only UTF-8
		}
		show := func(ts []token) string { return fmt.Sprintf("%q", ts) }
		want := []token{{'w', "SELECT"}, {'*', "*"}, {'w', "FROM"}, {'i', table}, {'w', "WHERE"}, {'i', key}, {'w', "IN"},
			{'(', "("}, {'n', "1"}, {',', ","}, {'n', strconv.FormatInt(id, 10)}, {')', ")"}, {';', ";"}}
		stmt := pullStatement(&Facts{Table: table, TableKeyColumn: key}, []int64{1, id})
		got, err := lexKsql(stmt)
		if err != nil || show(got) != show(want) {
			t.Fatalf("pull statement %q lexes as %s (%v), want %s", stmt, show(got), err, show(want))
		}
	})
}
