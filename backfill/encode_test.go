package backfill

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The schemas ksqlDB registers for stream_order_insert when CREATE STREAM
// runs: the bare primitive "long" for the key, a KsqlDataSourceSchema record
// with a nullable ORDER_ID for the value. They are read from the one copy
// in backfilltest's testdata: this package's own tests cannot import
// backfilltest, which imports it.
var ksqlKeySchema, ksqlValueSchema = ksqlSchema("key.avsc"), ksqlSchema("value.avsc")

// ksqlSchema returns a schema file of backfilltest/testdata/ksql.
func ksqlSchema(name string) string {
	b, err := os.ReadFile(filepath.Join("backfilltest", "testdata", "ksql", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestEncodeMatchesContractBytes(t *testing.T) {
	t.Parallel()
	e := mustEncoder(t, ksqlSchemas(0x01020304, 0x0A0B0C0D), Mapping{KeyColumn: "USER_ID"}, orderColumns)
	w := e.NewWriter()
	key, value, skip, err := w.Encode([]any{int64(5), int64(100)})
	if err != nil || skip != "" {
		t.Fatalf("Encode: skip=%q err=%v", skip, err)
	}
	if got, want := hex.EncodeToString(key), "00010203040a"; got != want {
		t.Errorf("key bytes = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(value), "000a0b0c0d02c801"; got != want {
		t.Errorf("value bytes = %s, want %s", got, want)
	}
	// Extremes: zig-zag of negative and max int64.
	key, value, _, err = w.Encode([]any{int64(-1), int64(1<<63 - 1)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(key), "000102030401"; got != want {
		t.Errorf("key(-1) = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(value), "000a0b0c0d02feffffffffffffffff01"; got != want {
		t.Errorf("value(maxint64) = %s, want %s", got, want)
	}
}

func TestEncodeSkipsNulls(t *testing.T) {
	t.Parallel()
	e := mustEncoder(t, ksqlSchemas(1, 2), Mapping{KeyColumn: "user_id"}, orderColumns)
	w := e.NewWriter()
	for _, tc := range []struct {
		row  []any
		want SkipReason
	}{
		{[]any{nil, int64(1)}, SkipNullKey},
		{[]any{int64(1), nil}, SkipNullValue},
		{[]any{nil, nil}, SkipNullKey},
	} {
		k, v, skip, err := w.Encode(tc.row)
		if err != nil || skip != tc.want || k != nil || v != nil {
			t.Errorf("Encode(%v) = %x, %x, %q, %v; want skip %q", tc.row, k, v, skip, err, tc.want)
		}
	}
}

func TestEncodeRejectsMistypedValue(t *testing.T) {
	t.Parallel()
	e := mustEncoder(t, ksqlSchemas(1, 2), Mapping{KeyColumn: "user_id"}, orderColumns)
	if _, _, _, err := e.NewWriter().Encode([]any{"5", int64(1)}); err == nil || !strings.Contains(err.Error(), "user_id") {
		t.Fatalf("want an error naming the key column, got %v", err)
	}
}

func TestIntKeySchemaRangeChecked(t *testing.T) {
	t.Parallel()
	s := ksqlSchemas(1, 2)
	s.Key.Schema = `"int"`
	e := mustEncoder(t, s, Mapping{KeyColumn: "user_id"}, orderColumns)
	w := e.NewWriter()
	key, _, _, err := w.Encode([]any{int64(5), int64(1)})
	if err != nil || !bytes.Equal(key, []byte{0, 0, 0, 0, 1, 0x0a}) {
		t.Fatalf("int key = %x, %v", key, err)
	}
	if _, _, _, err := w.Encode([]any{int64(1) << 40, int64(1)}); err == nil {
		t.Fatal("want an error for a key beyond int32")
	}
}

func TestNewCodecRejectsWrongShapes(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Schemas){
		"record key":  func(s *Schemas) { s.Key.Schema = `{"type":"record","name":"K","fields":[{"name":"ID","type":"long"}]}` },
		"union key":   func(s *Schemas) { s.Key.Schema = `["null","long"]` },
		"string key":  func(s *Schemas) { s.Key.Schema = `"string"` },
		"not avro":    func(s *Schemas) { s.Value.Schema = `{"type":"nope"}` },
		"plain value": func(s *Schemas) { s.Value.Schema = `"long"` },
		"array field": func(s *Schemas) {
			s.Value.Schema = `{"type":"record","name":"V","fields":[{"name":"A","type":{"type":"array","items":"long"}}]}`
		},
		"id too large": func(s *Schemas) { s.Value.ID = 1 << 32 },
	} {
		s := ksqlSchemas(1, 2)
		mutate(&s)
		_, err := NewCodec(s)
		if err == nil || KindOf(err) != KindContract {
			t.Errorf("%s: want a contract error, got %v", name, err)
		}
	}
}

func TestBindMapsColumnsCaseInsensitively(t *testing.T) {
	t.Parallel()
	c, err := NewCodec(ksqlSchemas(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		m       Mapping
		cols    []Column
		wantErr string
	}{
		"min_ prefix":       {Mapping{KeyColumn: "user_id"}, orderColumns, ""},
		"same name":         {Mapping{KeyColumn: "ACCOUNT_ID"}, []Column{{Name: "account_id", Type: TypeInt64}, {Name: "order_id", Type: TypeInt64}}, ""},
		"explicit":          {Mapping{KeyColumn: "u", ValueColumns: map[string]string{"order_id": "first"}}, []Column{{Name: "u", Type: TypeInt64}, {Name: "first", Type: TypeInt64}}, ""},
		"missing key":       {Mapping{KeyColumn: "account_id"}, orderColumns, `key column "account_id" is not in the query result`},
		"string key":        {Mapping{KeyColumn: "user_id"}, []Column{{Name: "user_id", Type: TypeString}, {Name: "order_id", Type: TypeInt64}}, "column type is STRING"},
		"no value column":   {Mapping{KeyColumn: "user_id"}, []Column{{Name: "user_id", Type: TypeInt64}, {Name: "first", Type: TypeInt64}}, "value field ORDER_ID"},
		"float value":       {Mapping{KeyColumn: "user_id"}, []Column{{Name: "user_id", Type: TypeInt64}, {Name: "order_id", Type: TypeFloat64}}, "column type is FLOAT64"},
		"unknown field":     {Mapping{KeyColumn: "user_id", ValueColumns: map[string]string{"NOPE": "x"}}, orderColumns, `names field "NOPE"`},
		"repeated column":   {Mapping{KeyColumn: "user_id"}, []Column{{Name: "user_id", Type: TypeInt64, Repeated: true}, {Name: "order_id", Type: TypeInt64}}, "REPEATED"},
		"key used as value": {Mapping{KeyColumn: "user_id", ValueColumns: map[string]string{"ORDER_ID": "user_id"}}, orderColumns, "both read column"},
	} {
		_, err := c.Bind(tc.m, tc.cols)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || KindOf(err) != KindContract):
			t.Errorf("%s: want contract error containing %q, got %v", name, tc.wantErr, err)
		}
	}
}
