package ksqlfake

import (
	"encoding/json"
	"strings"
	"testing"
)

// A lagging standby answers unless lag reporting is on and the request's
// max.allowed.offset.lag is below its lag.
func TestLaggingStandbyServesUnlessTheRequestBoundsItsLag(t *testing.T) {
	e := newEnv(t, 1)
	const stmt = "SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1);"
	bounded, _ := json.Marshal(map[string]any{"ksql": stmt, "streamsProperties": map[string]any{maxLagProp: 0}})
	for _, c := range []struct {
		reporting bool
		body      string
		rows      int
	}{{true, ksqlBody(stmt), 0}, {true, string(bounded), 1}, {false, string(bounded), 0}} {
		s := e.start(func(cfg *Config) { cfg.LaggingStandby, cfg.LagReporting = true, c.reporting })
		e.produce(0, e.key(1), e.value(10))
		waitFor(t, "processing", func() bool { return s.Processed() == 1 })
		_, body := postOK(t, s, "/query", c.body)
		if got := strings.Count(body, `"row"`); got != c.rows {
			t.Errorf("lag reporting %v, body %s: %d rows; want %d: %s", c.reporting, c.body, got, c.rows, body)
		}
	}
}

func TestShowPropertiesAndExplain(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(cfg *Config) {
		cfg.SharedRuntime, cfg.LaggingStandby, cfg.PersistentPrefix, cfg.Repartition = true, true, "pq_", true
	})
	_, body := postOK(t, s, "/ksql", ksqlBody("SHOW PROPERTIES;"))
	for _, want := range []string{`"@type":"properties"`, `{"name":"ksql.runtime.feature.shared.enabled","scope":"KSQL","value":"true"}`,
		`{"name":"ksql.query.pull.enable.standby.reads","scope":"KSQL","value":"true"}`, `{"name":"ksql.persistent.prefix","scope":"KSQL","value":"pq_"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("SHOW PROPERTIES lacks %s: %s", want, body)
		}
	}
	_, body = postOK(t, s, "/ksql", ksqlBody("EXPLAIN CTAS_TABLE_MIN_ORDER_1;"))
	if !strings.Contains(body, `"@type":"queryDescription"`) || !strings.Contains(body, "(topic: Aggregate-GroupBy-repartition)") {
		t.Errorf("EXPLAIN: %s", body)
	}
	if code, _, body := post(t, s.URL(), "/ksql", ksqlBody("EXPLAIN CTAS_OTHER_9;"), ""); code != 400 || !strings.Contains(body, "does not exist") {
		t.Errorf("EXPLAIN of another query: %d %s", code, body)
	}
}
