package ksqldb

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// minTable answers pull queries on /query as a table holding key*10 for
// every key asked.
func minTable() http.Handler {
	in := regexp.MustCompile(`IN \(([^)]*)\)`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Ksql string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		out := []string{`{"header":{"queryId":"q","schema":"` + "`K` BIGINT KEY, `V` BIGINT" + `"}}`}
		if m := in.FindStringSubmatch(body.Ksql); m != nil {
			for _, k := range strings.Split(m[1], ",") {
				var key int64
				fmt.Sscan(strings.TrimSpace(k), &key)
				out = append(out, fmt.Sprintf(`{"row":{"columns":[%d,%d]}}`, key, key*10))
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[" + strings.Join(out, ",") + "]"))
	})
}

// A run that sent a key more than once announced that user's first order
// more than once: verification fails although the table holds every
// minimum, and says how many records and keys disagree.
func TestVerifyFailsWhenRecordsAndKeysDisagree(t *testing.T) {
	t.Parallel()
	facts := Facts{ServerVersion: "0.23.1", Table: "T", TableKeyColumn: "K", TableValueColumn: "V"}
	for _, mode := range []VerifyMode{ModeFull, ModeSample} {
		c := testClient(t, minTable(), nil)
		rec, _ := NewRecorder(mode, 50, 1)
		for k := int64(1); k <= 200; k++ {
			rec.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k * 10}})
		}
		// Every key again: a custom query without GROUP BY, or a result
		// table written twice.
		for k := int64(1); k <= 200; k++ {
			rec.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k * 10}})
		}
		v, err := c.Verify(context.Background(), facts, rec, VerifyOptions{Recheck: time.Millisecond})
		if err == nil || backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "more than once") {
			t.Fatalf("%s: verification %+v passed or failed wrongly: %v", mode, v, err)
		}
		if v.Status != "failed" || v.DuplicateKeys == 0 || v.DuplicateRecords == 0 || len(v.Examples) == 0 {
			t.Fatalf("%s: verification %+v does not report the duplicates", mode, v)
		}
		if mode == ModeFull && (v.Observed != 400 || v.Checked != 200 || v.DuplicateKeys != 200 || v.DuplicateRecords != 200) {
			t.Fatalf("full: %+v, want 400 records for 200 keys, 200 keys sent twice", v)
		}
	}
}

// Without duplicates the same run passes, and the report says so.
func TestVerifyPassesWhenEveryKeyWasSentOnce(t *testing.T) {
	t.Parallel()
	facts := Facts{ServerVersion: "0.23.1", Table: "T", TableKeyColumn: "K", TableValueColumn: "V"}
	for _, mode := range []VerifyMode{ModeFull, ModeSample} {
		c := testClient(t, minTable(), nil)
		rec, _ := NewRecorder(mode, 50, 1)
		for k := int64(1); k <= 200; k++ {
			rec.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k * 10}})
		}
		v, err := c.Verify(context.Background(), facts, rec, VerifyOptions{Recheck: time.Millisecond})
		if err != nil || v.Status != "passed" || v.DuplicateKeys != 0 || v.DuplicateRecords != 0 {
			t.Fatalf("%s: %+v: %v", mode, v, err)
		}
	}
}

// In sample mode every copy of a sampled key is seen, so a duplicated key
// in the sample is always found, and its smallest value is kept.
func TestSampleSeesEveryCopyOfASampledKey(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 50; seed++ {
		r, _ := NewRecorder(ModeSample, 20, seed)
		for k := int64(0); k < 1000; k++ {
			r.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k + 5}})
		}
		for k := int64(999); k >= 0; k-- { // the copies come later, in another order
			r.ObserveBatch([]backfill.KeyValue{{Key: k, Value: k}})
		}
		keys := r.Keys()
		d := r.Duplicates()
		if len(keys) != 20 || d.Keys != 20 || d.Records != 20 {
			t.Fatalf("seed %d: %d keys, duplicates %+v; want 20 sampled keys each seen twice", seed, len(keys), d)
		}
		for _, kv := range keys {
			if kv.Value != kv.Key {
				t.Fatalf("seed %d: key %d kept %d, want its smaller value %d", seed, kv.Key, kv.Value, kv.Key)
			}
		}
	}
}

// A verification whose every key matched in the first pass does not
// pause for a second one.
func TestVerifyDoesNotRecheckWhenNothingFailed(t *testing.T) {
	t.Parallel()
	facts := Facts{ServerVersion: "0.23.1", Table: "T", TableKeyColumn: "K", TableValueColumn: "V"}
	c := testClient(t, minTable(), nil)
	rec, _ := NewRecorder(ModeFull, 0, 1)
	rec.ObserveBatch([]backfill.KeyValue{{Key: 1, Value: 10}, {Key: 2, Value: 20}})
	start := time.Now()
	v, err := c.Verify(context.Background(), facts, rec, VerifyOptions{Recheck: time.Minute})
	if err != nil || v.Rounds != 1 || time.Since(start) > 30*time.Second {
		t.Fatalf("verification %+v (%v) took %s: want one round and no recheck pause", v, err, time.Since(start))
	}
}

// SIGTERM during verification is an interruption, not a failed check.
func TestVerifyInterruptedIsNotFailed(t *testing.T) {
	t.Parallel()
	facts := Facts{ServerVersion: "0.23.1", Table: "T", TableKeyColumn: "K", TableValueColumn: "V"}
	ctx, cancel := context.WithCancel(context.Background())
	// The table lacks key 2, so a recheck is due; the run is interrupted
	// during its pause.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"header":{"queryId":"q","schema":"` + "`K` BIGINT KEY, `V` BIGINT" + `"}},{"row":{"columns":[1,10]}}]`))
		cancel()
	})
	c := testClient(t, h, nil)
	rec, _ := NewRecorder(ModeFull, 0, 1)
	rec.ObserveBatch([]backfill.KeyValue{{Key: 1, Value: 10}, {Key: 2, Value: 20}})
	v, err := c.Verify(ctx, facts, rec, VerifyOptions{Recheck: time.Minute})
	if backfill.KindOf(err) != backfill.KindInterrupted || v.Status != "interrupted" {
		t.Fatalf("verification %+v: %v (kind %s); want status interrupted", v, err, backfill.KindOf(err))
	}
}
