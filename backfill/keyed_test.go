package backfill

import (
	"strings"
	"testing"
)

// The job keeps each key's minimum of the value schema's first field, so
// that field must be a long or an int; the others ride along.
func TestPlanKeepsTheFirstFieldsMinimum(t *testing.T) {
	t.Parallel()
	schema := func(first, second string) Schemas {
		s := ksqlSchemas(1, 2)
		s.Value.Schema = `{"type":"record","name":"V","fields":[{"name":"` + first + `","type":["null","long"]},{"name":"` + second + `","type":["null","string"]}]}`
		return s
	}
	c, err := NewCodec(schema("ORDER_ID", "NOTE"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Codec: c, Mapping: Mapping{KeyColumn: "user_id"}}
	proj, err := p.plan([]Column{{Name: "user_id", Type: TypeInt64}, {Name: "note", Type: TypeString}, {Name: "min_order_id", Type: TypeInt64}})
	if err != nil || proj.Key != "user_id" || proj.Min != "min_order_id" || len(proj.Carry) != 1 || proj.Carry[0] != "note" {
		t.Fatalf("projection %+v, %v", proj, err)
	}
	s := ksqlSchemas(1, 2)
	s.Value.Schema = `{"type":"record","name":"V","fields":[{"name":"NOTE","type":["null","string"]},{"name":"ORDER_ID","type":["null","long"]}]}`
	if c, err = NewCodec(s); err != nil {
		t.Fatal(err)
	}
	p.Codec = c
	_, err = p.plan([]Column{{Name: "user_id", Type: TypeInt64}, {Name: "note", Type: TypeString}, {Name: "order_id", Type: TypeInt64}})
	if KindOf(err) != KindContract || !strings.Contains(err.Error(), "first field, NOTE") {
		t.Fatalf("a string first field: %v (kind %s), want a contract error naming it", err, KindOf(err))
	}
}
