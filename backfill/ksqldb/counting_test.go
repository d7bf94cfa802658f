package ksqldb

import "testing"

func TestFindCountColumn(t *testing.T) {
	t.Parallel()
	table := func(names ...string) *sourceDescription {
		d := &sourceDescription{}
		for _, n := range names {
			var f sourceField
			f.Name, f.Schema.Type = n, "BIGINT"
			d.Fields = append(d.Fields, f)
		}
		return d
	}
	for _, c := range []struct {
		stmt string
		cols []string
		want string
	}{
		{"CREATE TABLE `t` AS SELECT account_id, MIN(order_id) AS min_order_id, COUNT(*) AS order_count FROM `s` GROUP BY account_id;",
			[]string{"MIN_ORDER_ID", "ORDER_COUNT"}, "ORDER_COUNT"},
		{"CREATE TABLE `t` AS SELECT `ACCOUNT_ID`, MIN(`ORDER_ID`) `MIN_ORDER_ID`, count( * ) `n` FROM `s` GROUP BY `ACCOUNT_ID` EMIT CHANGES;",
			[]string{"MIN_ORDER_ID", "n"}, "n"},
		{"CREATE TABLE `t` AS SELECT account_id, MIN(order_id) AS min_order_id FROM `s` GROUP BY account_id;",
			[]string{"MIN_ORDER_ID"}, ""},
		{"CREATE TABLE `t` AS SELECT account_id, COUNT(*) AS c FROM `s` GROUP BY account_id;", // no such column in the table
			[]string{"MIN_ORDER_ID"}, ""},
	} {
		if got := findCountColumn(c.stmt, table(c.cols...)); got != c.want {
			t.Errorf("%s: %q, want %q", c.stmt, got, c.want)
		}
	}
}
