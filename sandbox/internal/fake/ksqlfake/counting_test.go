package ksqlfake

import (
	"strings"
	"testing"
)

// The counting table (V000006): DESCRIBE and pull queries carry the COUNT
// column, EXPLAIN the query's overridden properties and SHOW PROPERTIES
// ksqlDB's cache default and the server's own settings.
func TestCountingTable(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(cfg *Config) {
		cfg.Table, cfg.TableTopic, cfg.MinColumn, cfg.CountColumn = "table_first_order", "TABLE.FIRST_ORDER", "MIN_ORDER_ID", "ORDER_COUNT"
		cfg.QueryProperties = map[string]any{"cache.max.bytes.buffering": "0", "processing.guarantee": "exactly_once_v2"}
		cfg.ServerProperties = map[string]string{"ksql.streams.statestore.cache.max.bytes": "0"}
	})
	for _, v := range []int64{12, 10, 11} {
		e.produce(0, e.key(1), e.value(v))
	}
	waitFor(t, "processing", func() bool { return s.Processed() == 3 })

	_, body := postOK(t, s, "/ksql", ksqlBody("DESCRIBE `table_first_order`;"))
	for _, want := range []string{`"name":"ORDER_COUNT"`, "COUNT(*) `ORDER_COUNT`"} {
		if !strings.Contains(body, want) {
			t.Errorf("DESCRIBE lacks %s: %s", want, body)
		}
	}
	_, body = postOK(t, s, "/query", ksqlBody("SELECT * FROM `table_first_order` WHERE ACCOUNT_ID = 1;"))
	if !strings.Contains(body, "`ORDER_COUNT` BIGINT") || !strings.Contains(body, `"columns":[1,10,3]`) {
		t.Errorf("pull query: want MIN 10 and COUNT 3: %s", body)
	}
	_, body = postOK(t, s, "/ksql", ksqlBody("EXPLAIN CTAS_TABLE_FIRST_ORDER_1;"))
	if !strings.Contains(body, `"overriddenProperties":{"cache.max.bytes.buffering":"0","processing.guarantee":"exactly_once_v2"}`) {
		t.Errorf("EXPLAIN: %s", body)
	}
	_, body = postOK(t, s, "/ksql", ksqlBody("SHOW PROPERTIES;"))
	for _, want := range []string{`{"name":"ksql.streams.cache.max.bytes.buffering","scope":"KSQL","value":"10000000"}`,
		`{"name":"ksql.streams.statestore.cache.max.bytes","scope":"KSQL","value":"0"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("SHOW PROPERTIES lacks %s: %s", want, body)
		}
	}
}
