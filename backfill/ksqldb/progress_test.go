package ksqldb

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// describeAnswer serves DESCRIBE … EXTENDED with the given
// queryOffsetSummaries JSON.
func describeAnswer(summaries func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"@type":"sourceDescription","sourceDescription":{"name":"table_min_order","type":"TABLE","queryOffsetSummaries":%s}}]`, summaries())
	})
}

var progressFacts = Facts{Table: "table_min_order", Stream: "stream_order_insert", Topic: "STREAM.ORDER.INSERT", QueryID: "CTAS_TABLE_MIN_ORDER_3"}

func TestProgressReadsTheTableQuerysCommittedOffsets(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		summaries string
		want      map[int32]int64
		err       string
	}{
		"committed": {
			summaries: `[{"groupId":"_confluent-ksql-default_query_CSAS_OTHER_1","topicSummaries":[{"kafkaTopic":"STREAM.ORDER.INSERT","offsets":[{"partition":0,"logStartOffset":0,"logEndOffset":9,"consumerOffset":9}]}]},
				{"groupId":"_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_3","topicSummaries":[{"kafkaTopic":"OTHER","offsets":[{"partition":0,"logStartOffset":0,"logEndOffset":5,"consumerOffset":5}]},
				{"kafkaTopic":"STREAM.ORDER.INSERT","offsets":[{"partition":0,"logStartOffset":0,"logEndOffset":812,"consumerOffset":800},{"partition":1,"logStartOffset":4,"logEndOffset":10,"consumerOffset":0}]}]}]`,
			want: map[int32]int64{0: 800, 1: 0},
		},
		"nothing committed yet": {
			summaries: `[{"groupId":"_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_3","topicSummaries":[]}]`,
			want:      map[int32]int64{},
		},
		"no query writes the table": {summaries: `[]`, err: "no persistent query writing table `table_min_order`"},
		"no summaries at all":       {summaries: `null`, err: "no persistent query writing table"},
		"another query":             {summaries: `[{"groupId":"_confluent-ksql-default_query_CTAS_X_1","topicSummaries":[]}]`, err: "no consumer group for query CTAS_TABLE_MIN_ORDER_3"},
	} {
		t.Run(name, func(t *testing.T) {
			c := testClient(t, describeAnswer(func() string { return tc.summaries }), nil)
			qp, err := c.Progress(context.Background(), progressFacts)
			if tc.err != "" {
				if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("kind %v: %v; want a contract error saying %q", backfill.KindOf(err), err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(qp.Committed) != fmt.Sprint(tc.want) || qp.Group != "_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_3" {
				t.Fatalf("progress %+v, %v; want %v", qp, err, tc.want)
			}
		})
	}
}

// TestCatchUpKeepsWaitingThroughUnreachableSpells: ksqlDB answering 503
// for a while is waited through, as long as the lag shrinks within the
// stall bound; a ksqlDB that stays unreachable fails with KindUnavailable.
func TestCatchUpKeepsWaitingThroughUnreachableSpells(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n%3 == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"@type":"generic_error","error_code":50302,"message":"KSQL is not yet ready"}`)
			return
		}
		describeAnswer(func() string {
			return fmt.Sprintf(`[{"groupId":"_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_3","topicSummaries":[{"kafkaTopic":"STREAM.ORDER.INSERT","offsets":[{"partition":0,"logStartOffset":0,"logEndOffset":100,"consumerOffset":%d}]}]}]`, min(n*5, 100))
		}).ServeHTTP(w, r)
	}), func(c *Config) { c.Retries = 0 })
	res, err := c.CatchUp(context.Background(), progressFacts, map[int32]int64{0: 100}, CatchUpOptions{Poll: time.Millisecond, Stall: time.Second})
	if err != nil || res.Status != "caught_up" || res.Lag != 0 {
		t.Fatalf("catch-up %+v: %v", res, err)
	}

	down := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"@type":"generic_error","error_code":50302,"message":"KSQL is not yet ready"}`)
	}), func(c *Config) { c.Retries = 0 })
	res, err = down.CatchUp(context.Background(), progressFacts, map[int32]int64{0: 100}, CatchUpOptions{Poll: 10 * time.Millisecond, Stall: 100 * time.Millisecond})
	if backfill.KindOf(err) != backfill.KindUnavailable || res.Status != "unreachable" || !strings.Contains(err.Error(), "50302") {
		t.Fatalf("catch-up %+v: kind %v: %v", res, backfill.KindOf(err), err)
	}
}

func TestCatchUpReturnsContractErrorsAtOnceAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	c := testClient(t, describeAnswer(func() string { return `[]` }), nil)
	start := time.Now()
	if _, err := c.CatchUp(context.Background(), progressFacts, map[int32]int64{0: 1}, CatchUpOptions{Poll: time.Millisecond, Stall: time.Minute}); backfill.KindOf(err) != backfill.KindContract || time.Since(start) > 5*time.Second {
		t.Fatalf("kind %v after %s: %v", backfill.KindOf(err), time.Since(start), err)
	}
	stuck := testClient(t, describeAnswer(func() string {
		return `[{"groupId":"_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_3","topicSummaries":[]}]`
	}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := stuck.CatchUp(ctx, progressFacts, map[int32]int64{0: 1, 2: 7}, CatchUpOptions{Poll: time.Millisecond, Stall: time.Minute})
	if err == nil || res.Status != "interrupted" || res.Lag != 8 || len(res.Partitions) != 2 {
		t.Fatalf("catch-up %+v: %v", res, err)
	}
}
