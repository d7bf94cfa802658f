package ksqldb

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

func TestQuoteIdentifier(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"stream_order_insert":         "`stream_order_insert`",
		"STREAM_ORDER_INSERT":         "`STREAM_ORDER_INSERT`",
		"a`b":                         "`a``b`",
		"`":                           "````",
		"x`; DROP STREAM s; --":       "`x``; DROP STREAM s; --`",
		"with space, comma (paren)'q": "`with space, comma (paren)'q`",
	} {
		if got := QuoteIdentifier(in); got != want {
			t.Errorf("QuoteIdentifier(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPullStatementQuotesNames(t *testing.T) {
	t.Parallel()
	f := &Facts{Table: "my`table", TableKeyColumn: "ACCOUNT_ID"}
	got := pullStatement(f, []int64{1, -2, 9007199254740993})
	want := "SELECT * FROM `my``table` WHERE `ACCOUNT_ID` IN (1,-2,9007199254740993);"
	if got != want {
		t.Errorf("pullStatement = %s, want %s", got, want)
	}
}

func TestSchemaColumns(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT":                            "ACCOUNT_ID|MIN_ORDER_ID",
		"`a``b` BIGINT KEY, `S` STRUCT<`X` INTEGER, `Y` DECIMAL(4, 2)>, `Z` BIGINT": "a`b|S|Z",
		"ACCOUNT_ID BIGINT KEY, MIN_ORDER_ID BIGINT":                                "ACCOUNT_ID|MIN_ORDER_ID",
	} {
		if got := strings.Join(schemaColumns(in), "|"); got != want {
			t.Errorf("schemaColumns(%q) = %s, want %s", in, got, want)
		}
	}
}

// collect gathers rows through a reader as pull does: key -> value, -1
// for NULL; it checks the value column's name.
func collect(t *testing.T, read func(add func([]string, []any) error) error) map[int64]int64 {
	t.Helper()
	out := map[int64]int64{}
	err := read(func(cols []string, row []any) error {
		if len(cols) != 2 || cols[1] != "MIN_ORDER_ID" {
			t.Errorf("columns %v", cols)
		}
		k, _, err := toInt64(row[0])
		if err != nil {
			return err
		}
		v, null, err := toInt64(row[1])
		if null {
			v = -1
		}
		out[k] = v
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadersKeepBigintsExact(t *testing.T) {
	t.Parallel()
	const big = "9007199254740993" // 2^53+1: float64 would make it ...992
	query := `[{"header":{"queryId":"q1","schema":"` + "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT" + `"}},
{"row":{"columns":[` + big + `,` + big + `]}},
{"row":{"columns":[2,null]}}]`
	got := collect(t, func(add func([]string, []any) error) error { return readQuery(strings.NewReader(query), add) })
	if got[9007199254740993] != 9007199254740993 || got[2] != -1 || len(got) != 2 {
		t.Errorf("/query rows: %v", got)
	}
	delimited := `{"queryId":"q2","columnNames":["ACCOUNT_ID","MIN_ORDER_ID"],"columnTypes":["BIGINT","BIGINT"]}
[` + big + `,` + big + `]
`
	got = collect(t, func(add func([]string, []any) error) error { return readQueryStream(strings.NewReader(delimited), add) })
	if got[9007199254740993] != 9007199254740993 || len(got) != 1 {
		t.Errorf("/query-stream delimited rows: %v", got)
	}
	array := `[{"queryId":"q3","columnNames":["ACCOUNT_ID","MIN_ORDER_ID"],"columnTypes":["BIGINT","BIGINT"]},[1,` + big + `]]`
	got = collect(t, func(add func([]string, []any) error) error { return readQueryStream(strings.NewReader(array), add) })
	if got[1] != 9007199254740993 || len(got) != 1 {
		t.Errorf("/query-stream JSON rows: %v", got)
	}
}

func TestReadersSurfaceInlineErrors(t *testing.T) {
	t.Parallel()
	noop := func([]string, []any) error { return nil }
	for name, tc := range map[string]struct {
		body   string
		stream bool
		code   int
	}{
		"query object":       {`{"@type":"generic_error","error_code":50000,"message":"boom"}`, false, 50000},
		"query errorMessage": {`[{"header":{"schema":"` + "`K` BIGINT KEY" + `"}},{"errorMessage":{"@type":"generic_error","error_code":40001,"message":"bad"}}]`, false, 40001},
		"stream error line":  {`{"queryId":"q","columnNames":["K","V"],"columnTypes":["BIGINT","BIGINT"]}` + "\n" + `{"@type":"generic_error","error_code":50000,"message":"x"}`, true, 50000},
	} {
		var err error
		if tc.stream {
			err = readQueryStream(strings.NewReader(tc.body), noop)
		} else {
			err = readQuery(strings.NewReader(tc.body), noop)
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != tc.code {
			t.Errorf("%s: err = %v, want an APIError %d", name, err, tc.code)
		}
	}
	if err := readQuery(strings.NewReader(`[{"row":{"columns":[1,2]}}]`), noop); err == nil {
		t.Error("a row before the header must fail")
	}
}

// The release profiles of the sandbox's ksqlDB double check the same
// choice against the server's behaviour (sandbox/internal/component/ksqldb,
// TestEveryReleaseProfile).
func TestSupportsQueryStream(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"0.15.0": false, "0.17.0": false, "0.22.0": false, "0.23.1": false, "0.24.0": true, "0.28.1": true, "0.29.0": true,
		"6.2.1": false, "7.0.0": false, "7.0.9": false, "7.1.0": true, "7.2.1": true, "7.6.0-ce": true, "8.0.0": true, "8.3.1": true,
		"": false, "garbage": false,
	} {
		if got := supportsQueryStream(v); got != want {
			t.Errorf("supportsQueryStream(%q) = %v", v, got)
		}
	}
}

func TestRetriesHonourRetryAfterAndClassify(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"@type":"generic_error","error_code":42900,"message":"Host is at rate limit for pull queries."}`))
			return
		}
		_, _ = w.Write([]byte(`{"KsqlServerInfo":{"version":"0.29.0"}}`))
	}), nil)
	si, err := c.info(t.Context())
	if err != nil || si.Info.Version != "0.29.0" || calls.Load() != 3 {
		t.Fatalf("info = %+v, %v after %d calls; want success on the third", si, err, calls.Load())
	}
	if d := httpc.RetryAfter("7"); d != 7*time.Second {
		t.Errorf("retryAfter(7) = %s", d)
	}
	if d := httpc.RetryAfter("100000"); d != httpc.MaxRetryAfter {
		t.Errorf("retryAfter is not capped: %s", d)
	}
	if d := c.hc.Policy.Backoff(0, 3*time.Second); d != 3*time.Second {
		t.Errorf("backoff ignores the server's wait: %s", d)
	}

	calls.Store(0)
	exhausted := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"@type":"generic_error","error_code":50302,"message":"KSQL is not yet ready to serve requests."}`))
	}), func(c *Config) { c.Retries = 2 })
	_, err = exhausted.info(t.Context())
	var apiErr *APIError
	if backfill.KindOf(err) != backfill.KindUnavailable || !errors.As(err, &apiErr) || apiErr.Code != 50302 || calls.Load() != 3 {
		t.Errorf("exhausted 503: kind %v, %v after %d calls", backfill.KindOf(err), err, calls.Load())
	}
}

func TestAuthFailureIsConfigAndHidesThePassword(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"@type":"generic_error","error_code":40100,"message":"Unauthorized"}`))
	}), func(c *Config) { c.Username, c.Password = "job", secret })
	_, err := c.info(t.Context())
	if backfill.KindOf(err) != backfill.KindConfig || strings.Contains(err.Error(), secret) {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
	cfg := Config{URL: "http://job:" + secret + "@127.0.0.1:1", Password: secret}
	if s := cfg.String(); strings.Contains(s, secret) {
		t.Errorf("Config.String leaks the password: %s", s)
	}
	if s := cfg.LogValue().String(); strings.Contains(s, secret) {
		t.Errorf("Config.LogValue leaks the password: %s", s)
	}
}

func TestURLCredentialsNeverReachErrors(t *testing.T) {
	const secret = "pa55word-in-url"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New(Config{URL: "http://job:" + secret + "@" + addr, Retries: 1, MinBackoff: time.Millisecond, Timeout: time.Second, Stream: "stream_order_insert", Table: "table_min_order"})
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "job" || c.pass != secret || strings.Contains(c.URL(), secret) {
		t.Fatalf("credentials not moved out of the URL: %s", c.URL())
	}
	_, err = c.info(t.Context())
	if backfill.KindOf(err) != backfill.KindUnavailable || strings.Contains(err.Error(), secret) {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
	if _, err := New(Config{URL: "ftp://x"}); backfill.KindOf(err) != backfill.KindConfig {
		t.Errorf("a non-http URL: %v", err)
	}
}

func TestRecorderModes(t *testing.T) {
	t.Parallel()
	// config.Validate refuses both; reaching the recorder is a bug.
	if _, err := NewRecorder("everything", 0, 1); err == nil || backfill.KindOf(err) != backfill.KindInternal {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := NewRecorder(ModeSample, -1, 1); err == nil || backfill.KindOf(err) != backfill.KindInternal {
		t.Errorf("negative sample: %v", err)
	}

	full, _ := NewRecorder(ModeFull, 0, 0)
	full.ObserveBatch([]backfill.KeyValue{{Key: 3, Value: 30}, {Key: 1, Value: 10}, {Key: 3, Value: 25}})
	full.ObserveBatch([]backfill.KeyValue{{Key: 2, Value: 20}, {Key: 3, Value: 40}})
	got := full.Keys()
	want := []backfill.KeyValue{{Key: 1, Value: 10}, {Key: 2, Value: 20}, {Key: 3, Value: 25}}
	if len(got) != len(want) || full.Observed() != 5 {
		t.Fatalf("full keys = %v (observed %d), want %v", got, full.Observed(), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("full keys = %v, want %v", got, want)
		}
	}

	none, _ := NewRecorder(ModeNone, 0, 0)
	none.ObserveBatch(want)
	if none.Keys() != nil || none.Observed() != 3 {
		t.Errorf("none mode keeps keys")
	}
}

func TestRecorderIsSafeForConcurrentBatches(t *testing.T) {
	t.Parallel()
	for _, mode := range []VerifyMode{ModeFull, ModeSample} {
		r, _ := NewRecorder(mode, 50, 3)
		var wg sync.WaitGroup
		for g := range int64(8) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := make([]backfill.KeyValue, 0, 10)
				for i := range int64(1000) {
					batch = append(batch, backfill.KeyValue{Key: g*1000 + i, Value: i})
					if len(batch) == cap(batch) {
						r.ObserveBatch(batch)
						batch = batch[:0] // the pipeline reuses its slice
					}
				}
			}()
		}
		wg.Wait()
		want := map[VerifyMode]int{ModeFull: 8000, ModeSample: 50}[mode]
		if got := r.Keys(); len(got) != want || r.Observed() != 8000 {
			t.Errorf("%s: %d keys of %d observed; want %d keys", mode, len(got), r.Observed(), want)
		}
	}
}

func TestRecorderSampleIsUniformAndBounded(t *testing.T) {
	t.Parallel()
	const keys, size, runs = 100, 10, 2000
	hits := make([]int, keys)
	for seed := uint64(1); seed <= runs; seed++ {
		r, _ := NewRecorder(ModeSample, size, seed)
		batch := make([]backfill.KeyValue, 0, 7)
		for k := range int64(keys) {
			batch = append(batch, backfill.KeyValue{Key: k, Value: k * 10})
			if len(batch) == cap(batch) {
				r.ObserveBatch(batch)
				batch = batch[:0]
			}
		}
		r.ObserveBatch(batch)
		got := r.Keys()
		if len(got) != size {
			t.Fatalf("sample has %d keys, want %d", len(got), size)
		}
		for i, kv := range got {
			if kv.Value != kv.Key*10 || (i > 0 && got[i-1].Key >= kv.Key) {
				t.Fatalf("sample %v is not sorted unique pairs", got)
			}
			hits[kv.Key]++
		}
	}
	// Each key is expected runs*size/keys = 200 times; a uniform sampler
	// stays well within ±40% (about 6 standard deviations).
	for k, h := range hits {
		if h < 120 || h > 280 {
			t.Errorf("key %d sampled %d times of %d runs; want about 200 (sampling is not uniform)", k, h, runs)
		}
	}
	a, _ := NewRecorder(ModeSample, 5, 42)
	b, _ := NewRecorder(ModeSample, 5, 42)
	for k := range int64(1000) {
		a.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k}})
		b.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k}})
	}
	if ka, kb := a.Keys(), b.Keys(); len(ka) != 5 || ka[0] != kb[0] || ka[4] != kb[4] {
		t.Errorf("same seed, different samples: %v %v", ka, kb)
	}
	dup, _ := NewRecorder(ModeSample, 5, 1)
	dup.ObserveBatch([]backfill.KeyValue{{Key: 1, Value: 9}, {Key: 1, Value: 4}, {Key: 1, Value: 6}})
	if got := dup.Keys(); len(got) != 1 || got[0].Value != 4 {
		t.Errorf("a repeated key keeps its MIN: %v", got)
	}
}

// With the result's size reserved, full mode stores 16 bytes per record
// and never grows its storage by copying.
func TestRecorderReserveAvoidsGrowth(t *testing.T) {
	t.Parallel()
	r, err := NewRecorder(ModeFull, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Reserve(1000)
	before := &r.kv[:1][0]
	batch := make([]backfill.KeyValue, 100)
	for i := range 10 {
		for j := range batch {
			batch[j] = backfill.KeyValue{Key: int64(1000 - i*100 - j), Value: int64(j)}
		}
		r.ObserveBatch(batch)
	}
	if cap(r.kv) >= 2000 || &r.kv[0] != before {
		t.Errorf("storage grew: cap %d, moved %v", cap(r.kv), &r.kv[0] != before)
	}
	if keys := r.Keys(); len(keys) != 1000 || keys[0].Key != 1 {
		t.Errorf("keys: %d, first %+v", len(keys), keys[0])
	}
	sample, _ := NewRecorder(ModeSample, 10, 1)
	sample.Reserve(1 << 20)
	if cap(sample.kv) > 1<<16 {
		t.Errorf("sample mode reserved %d", cap(sample.kv))
	}
}

// The client takes its settings as given: no zero value stands for a
// default of its own (config.Default holds the defaults).
func TestNewRefusesSettingsItCannotUse(t *testing.T) {
	t.Parallel()
	ok := Config{URL: "http://ksqldb:8088", Timeout: time.Second, Stream: "s", Table: "t"}
	if c, err := New(ok); err != nil || c.hc.Policy.Retries != 0 {
		t.Fatalf("retries 0: %v, %d retries", err, c.hc.Policy.Retries)
	}
	for name, mod := range map[string]func(*Config){
		"ksqldb.timeout": func(c *Config) { c.Timeout = 0 },
		"ksqldb.retries": func(c *Config) { c.Retries = -1 },
		"ksqldb.stream":  func(c *Config) { c.Stream = "" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := New(cfg); backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
