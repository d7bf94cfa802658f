package backfill

import (
	"strings"
	"testing"
)

// A custom query with MIN(order_id) AS min_order_id and
// MAX(order_id) AS order_id bound ORDER_ID to order_id, silently, and the
// users got their maximum. Two candidates for one field, or a column the
// mapping does not use, must be refused naming them.
func TestBindRefusesAmbiguousAndUnusedColumns(t *testing.T) {
	t.Parallel()
	c, err := NewCodec(ksqlSchemas(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	both := []Column{{Name: "user_id", Type: TypeInt64}, {Name: "min_order_id", Type: TypeInt64}, {Name: "order_id", Type: TypeInt64}}
	for name, tc := range map[string]struct {
		m       Mapping
		cols    []Column
		wantErr []string // each in the contract error; none: binds
		column  string   // the column ORDER_ID must read when it binds
	}{
		"two candidates": {Mapping{KeyColumn: "user_id"}, both, []string{"ORDER_ID", `"min_order_id"`, `"order_id"`, "mapping.value_columns"}, ""},
		"unused column": {Mapping{KeyColumn: "user_id"}, []Column{{Name: "user_id", Type: TypeInt64}, {Name: "min_order_id", Type: TypeInt64}, {Name: "region", Type: TypeString}},
			[]string{`"region"`, "not used"}, ""},
		"explicit choice":       {Mapping{KeyColumn: "user_id", ValueColumns: map[string]string{"ORDER_ID": "min_order_id"}}, both, nil, "min_order_id"},
		"explicit other choice": {Mapping{KeyColumn: "user_id", ValueColumns: map[string]string{"order_id": "order_id"}}, both, nil, "order_id"},
	} {
		e, err := c.Bind(tc.m, tc.cols)
		if len(tc.wantErr) == 0 {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if got := e.fields[0].column; got != tc.column {
				t.Errorf("%s: ORDER_ID reads %q, want %q", name, got, tc.column)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: bound %s; want a contract error", name, e.Describe())
			continue
		}
		for _, want := range tc.wantErr {
			if !strings.Contains(err.Error(), want) || KindOf(err) != KindContract {
				t.Errorf("%s: want a contract error containing %q, got %v (kind %s)", name, want, err, KindOf(err))
			}
		}
	}
}
