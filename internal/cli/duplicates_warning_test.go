package cli

import (
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
)

// The duplicate warning tells the truth for each pipeline.
func TestDuplicateWarningPerPipeline(t *testing.T) {
	for name, tc := range map[string]struct {
		facts     ksqldb.Facts
		loud      bool
		want, not []string
	}{
		"join pipeline: stream_min_order reads the stream": {
			ksqldb.Facts{Stream: "stream_order_insert", Table: "table_min_order", StreamReaders: []string{"CSAS_STREAM_MIN_ORDER_5"}},
			true, []string{"queries CSAS_STREAM_MIN_ORDER_5 read stream stream_order_insert", "may have been sent twice"}, nil},
		"join table, no other reader": {
			ksqldb.Facts{Stream: "stream_order_insert", Table: "table_min_order"},
			false, []string{"table table_min_order is unaffected"}, []string{"sent twice"}},
		"counting pipeline beside the old table": {
			ksqldb.Facts{Stream: "stream_order_insert", Table: "table_first_order", CountColumn: "ORDER_COUNT",
				StreamReaders: []string{"CTAS_TABLE_MIN_ORDER_3"}, AggregatingReaders: []string{"CTAS_TABLE_MIN_ORDER_3"}},
			false, []string{"table table_first_order counted them twice in ORDER_COUNT", "does not announce these users again",
				"exceeds their number of orders", "CTAS_TABLE_MIN_ORDER_3", "MIN is unaffected"}, []string{"sent twice"}},
		"counting table while the join announcer still runs": {
			ksqldb.Facts{Stream: "stream_order_insert", Table: "table_first_order", CountColumn: "ORDER_COUNT",
				StreamReaders: []string{"CSAS_STREAM_MIN_ORDER_5"}},
			true, []string{"CSAS_STREAM_MIN_ORDER_5", "may have been sent twice"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			got, loud := duplicateWarning(2, []int64{7, 9}, tc.facts)
			if loud != tc.loud {
				t.Errorf("loud = %v, want %v: %s", loud, tc.loud, got)
			}
			if !strings.HasPrefix(got, "the broker stored 2 of this run's records twice (librdkafka#4953; keys: [7 9])") {
				t.Errorf("warning does not start with the count and keys: %s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("warning lacks %q: %s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("warning says %q: %s", w, got)
				}
			}
		})
	}
}
