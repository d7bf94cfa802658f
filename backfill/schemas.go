package backfill

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// RegisteredSchema is one schema as Schema Registry holds it under a subject.
type RegisteredSchema struct {
	Subject string
	Version int
	ID      int
	Schema  string // the Avro schema's JSON text
}

// Schemas are the key and value schemas records are written with.
type Schemas struct {
	Key   RegisteredSchema
	Value RegisteredSchema
}

// Codec holds the parsed key and value schemas after checking that they
// have the shape ksqlDB gives a stream with one BIGINT/INT key column:
// a bare primitive key and a record value.
type Codec struct {
	schemas Schemas
	key     avro.Schema
	keyType avro.Type
	value   *avro.RecordSchema
}

// NewCodec parses and checks the registered schemas. A key schema that is
// not a primitive long or int, or a value schema that is not a record of
// supported field types, is a contract error.
func NewCodec(s Schemas) (*Codec, error) {
	if s.Key.ID < 0 || s.Key.ID > 1<<31-1 || s.Value.ID < 0 || s.Value.ID > 1<<31-1 {
		return nil, Errorf(KindContract, "schema ids %d/%d do not fit the 4-byte wire-format id", s.Key.ID, s.Value.ID)
	}
	key, err := avro.ParseWithCache(s.Key.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, Errorf(KindContract, "key schema of subject %q (version %d, id %d) is not valid Avro: %w", s.Key.Subject, s.Key.Version, s.Key.ID, err)
	}
	kt := key.Type()
	if kt != avro.Long && kt != avro.Int {
		return nil, Errorf(KindContract, "key schema of subject %q (version %d, id %d) is %s; ksqlDB writes a single BIGINT/INT key as the bare primitive \"long\" or \"int\": check that the stream was created with key_format='AVRO' and one key column", s.Key.Subject, s.Key.Version, s.Key.ID, describeSchema(key))
	}
	value, err := avro.ParseWithCache(s.Value.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, Errorf(KindContract, "value schema of subject %q (version %d, id %d) is not valid Avro: %w", s.Value.Subject, s.Value.Version, s.Value.ID, err)
	}
	rec, ok := value.(*avro.RecordSchema)
	if !ok {
		return nil, Errorf(KindContract, "value schema of subject %q (version %d, id %d) is %s; ksqlDB's AVRO value schema is always a record", s.Value.Subject, s.Value.Version, s.Value.ID, describeSchema(value))
	}
	if len(rec.Fields()) == 0 {
		return nil, Errorf(KindContract, "value schema of subject %q has no fields", s.Value.Subject)
	}
	for _, f := range rec.Fields() {
		if _, _, err := fieldKind(f.Type()); err != nil {
			return nil, Errorf(KindContract, "value schema of subject %q: field %s: %w", s.Value.Subject, f.Name(), err)
		}
	}
	return &Codec{schemas: s, key: key, keyType: kt, value: rec}, nil
}

// Schemas returns the schemas the codec was built from.
func (c *Codec) Schemas() Schemas { return c.schemas }

// ValueFields returns the value record's field names in schema order.
func (c *Codec) ValueFields() []string {
	names := make([]string, len(c.value.Fields()))
	for i, f := range c.value.Fields() {
		names[i] = f.Name()
	}
	return names
}

// fieldKind returns the primitive type a value field carries and whether
// it may be null. Supported: a primitive, or a union of null and one primitive.
func fieldKind(s avro.Schema) (avro.Type, bool, error) {
	switch t := s.(type) {
	case *avro.PrimitiveSchema:
		if t.Logical() != nil {
			return "", false, fmt.Errorf("logical type %s is not supported", t.Logical().Type())
		}
		switch t.Type() {
		case avro.Long, avro.Int, avro.String, avro.Double, avro.Float, avro.Boolean:
			return t.Type(), false, nil
		}
	case *avro.UnionSchema:
		if t.Nullable() {
			_, i := t.Indices()
			inner, _, err := fieldKind(t.Types()[i])
			return inner, true, err
		}
	}
	return "", false, fmt.Errorf("type %s is not supported (want long, int, string, double, float or boolean, optionally in a union with null)", describeSchema(s))
}

func describeSchema(s avro.Schema) string {
	txt := s.String()
	if len(txt) > 200 {
		txt = txt[:200] + "…"
	}
	return strings.TrimSpace(txt)
}

// SchemaSelector picks one schema of a subject: the latest version (both
// fields 0), a version number, or a schema id.
type SchemaSelector struct {
	Version int // a version number, or 0
	ID      int // a schema id, or 0
}

// ParseSchemaSelector parses a schema selector setting: "latest" (or
// empty), a version number such as "3", or a schema id such as "id:42".
func ParseSchemaSelector(s string) (SchemaSelector, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "latest" {
		return SchemaSelector{}, nil
	}
	num, isID := strings.CutPrefix(s, "id:")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 1 || n > 1<<31-1 {
		return SchemaSelector{}, fmt.Errorf("%q is not a schema selector: want \"latest\", a version number such as \"3\", or a schema id such as \"id:42\"", s)
	}
	if isID {
		return SchemaSelector{ID: n}, nil
	}
	return SchemaSelector{Version: n}, nil
}
