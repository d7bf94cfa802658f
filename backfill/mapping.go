package backfill

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Mapping names the source columns that feed the record key and the value
// fields. Names match case-insensitively.
type Mapping struct {
	// KeyColumn is the column whose value becomes the record key.
	KeyColumn string
	// ValueColumns maps a value field to the column that feeds it. A field
	// not listed takes the column of the same name or "min_<field>" (so
	// min_order_id feeds ORDER_ID); both present is a contract error.
	ValueColumns map[string]string
}

// boundField is one value field bound to a source column.
type boundField struct {
	name     string
	column   string
	col      int
	schema   avro.Schema
	typ      avro.Type
	nullable bool
}

// Encoder turns source rows into Confluent wire-format keys and values.
// It is immutable and safe for concurrent use; each goroutine encodes
// through its own RecordWriter.
type Encoder struct {
	codec     *Codec
	keyColumn string
	keyCol    int
	fields    []boundField
}

// Bind checks the source columns against the schemas and the mapping and
// returns the encoder for rows of that shape. A missing column, a value
// field with no source column or with two candidates, a column no field
// reads, or a column whose type cannot carry the field's type is a
// contract error naming both sides.
func (c *Codec) Bind(m Mapping, cols []Column) (*Encoder, error) {
	find := func(name string) int {
		for i, col := range cols {
			if strings.EqualFold(col.Name, name) {
				return i
			}
		}
		return -1
	}
	have := columnList(cols)
	keyCol := find(m.KeyColumn)
	if keyCol < 0 {
		return nil, Errorf(KindContract, "key column %q is not in the query result (columns: %s): set the key column or change the query", m.KeyColumn, have)
	}
	if err := checkColumn(cols[keyCol], c.keyType); err != nil {
		return nil, Errorf(KindContract, "key column %q cannot feed the key schema of subject %q: %w", cols[keyCol].Name, c.schemas.Key.Subject, err)
	}
	for field := range m.ValueColumns {
		if c.valueField(field) == nil {
			return nil, Errorf(KindContract, "value mapping names field %q, but the value schema of subject %q has only %s", field, c.schemas.Value.Subject, strings.Join(c.ValueFields(), ", "))
		}
	}
	e := &Encoder{codec: c, keyColumn: cols[keyCol].Name, keyCol: keyCol}
	for _, f := range c.value.Fields() {
		col := -1
		if name, ok := lookupFold(m.ValueColumns, f.Name()); ok {
			if col = find(name); col < 0 {
				return nil, Errorf(KindContract, "value field %s is mapped to column %q, which is not in the query result (columns: %s)", f.Name(), name, have)
			}
		} else {
			same, prefixed := find(f.Name()), find("min_"+f.Name())
			if same >= 0 && prefixed >= 0 {
				return nil, Errorf(KindContract, "value field %s has two candidate columns in the query result, %q and %q: set mapping.value_columns %s=<column> to choose one, or drop the other from the query",
					f.Name(), cols[prefixed].Name, cols[same].Name, f.Name())
			}
			col = max(same, prefixed)
		}
		if col < 0 {
			return nil, Errorf(KindContract, "value field %s of subject %q has no source column: the query result has %s; map it explicitly (value column %s=<column>) or change the query", f.Name(), c.schemas.Value.Subject, have, f.Name())
		}
		if col == keyCol {
			return nil, Errorf(KindContract, "value field %s and the key both read column %q", f.Name(), cols[col].Name)
		}
		typ, nullable, _ := fieldKind(f.Type())
		if err := checkColumn(cols[col], typ); err != nil {
			return nil, Errorf(KindContract, "column %q cannot feed value field %s of subject %q: %w", cols[col].Name, f.Name(), c.schemas.Value.Subject, err)
		}
		e.fields = append(e.fields, boundField{name: f.Name(), column: cols[col].Name, col: col, schema: f.Type(), typ: typ, nullable: nullable})
	}
	if unused := e.unused(m, cols); len(unused) > 0 {
		return nil, Errorf(KindContract, "query result column(s) %s not used by the mapping (%s): drop them from the query, or map them with mapping.value_columns FIELD=column",
			strings.Join(unused, ", "), e.Describe())
	}
	return e, nil
}

// unused returns the quoted names of the columns that neither the key nor
// a value field reads. The other candidate of an explicitly mapped field
// (its own name or min_<field>) counts as used: the mapping chose.
func (e *Encoder) unused(m Mapping, cols []Column) []string {
	used := map[int]bool{e.keyCol: true}
	for _, f := range e.fields {
		used[f.col] = true
	}
	var out []string
	for i, col := range cols {
		if used[i] {
			continue
		}
		chosen := false
		for field := range m.ValueColumns {
			chosen = chosen || strings.EqualFold(col.Name, field) || strings.EqualFold(col.Name, "min_"+field)
		}
		if !chosen {
			out = append(out, fmt.Sprintf("%q", col.Name))
		}
	}
	return out
}

// Describe returns "FIELD<-column" pairs for logs.
func (e *Encoder) Describe() string {
	parts := []string{"key<-" + e.keyColumn}
	for _, f := range e.fields {
		parts = append(parts, f.name+"<-"+f.column)
	}
	return strings.Join(parts, ", ")
}

func (c *Codec) valueField(name string) *avro.Field {
	for _, f := range c.value.Fields() {
		if strings.EqualFold(f.Name(), name) {
			return f
		}
	}
	return nil
}

func lookupFold(m map[string]string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// checkColumn reports whether a column of the given type can carry t.
func checkColumn(col Column, t avro.Type) error {
	if col.Repeated {
		return fmt.Errorf("column is REPEATED (an array); want a scalar")
	}
	var want ColumnType
	switch t {
	case avro.Long, avro.Int:
		want = TypeInt64
	case avro.String:
		want = TypeString
	case avro.Double, avro.Float:
		want = TypeFloat64
	case avro.Boolean:
		want = TypeBool
	default:
		return fmt.Errorf("avro type %s is not supported", t)
	}
	if col.Type != want {
		return fmt.Errorf("column type is %s, Avro type %s needs %s", col.Type, t, want)
	}
	return nil
}

func columnList(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = fmt.Sprintf("%s %s", c.Name, c.Type)
	}
	return strings.Join(names, ", ")
}

// observedField returns the source column of the value schema's first
// field, which the Observer and the Filter see: the order id that
// table_min_order aggregates. It must be a long or an int.
func (e *Encoder) observedField() (int, error) {
	if len(e.fields) == 0 {
		return -1, Errorf(KindContract, "the value schema has no field to verify")
	}
	f := e.fields[0]
	if f.typ != avro.Long && f.typ != avro.Int {
		return -1, Errorf(KindContract, "value field %s is %s; only a long or int field can be verified", f.name, f.typ)
	}
	return f.col, nil
}
