package backfill

import "testing"

func ksqlSchemas(keyID, valueID int) Schemas {
	return Schemas{
		Key:   RegisteredSchema{Subject: "STREAM.ORDER.INSERT-key", Version: 1, ID: keyID, Schema: ksqlKeySchema},
		Value: RegisteredSchema{Subject: "STREAM.ORDER.INSERT-value", Version: 1, ID: valueID, Schema: ksqlValueSchema},
	}
}

var orderColumns = []Column{{Name: "user_id", Type: TypeInt64}, {Name: "min_order_id", Type: TypeInt64}}

func mustEncoder(t testing.TB, s Schemas, m Mapping, cols []Column) *Encoder {
	t.Helper()
	c, err := NewCodec(s)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Bind(m, cols)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
