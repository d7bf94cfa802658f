package backfill

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// hambaEncode is the reference: the same record written through
// hamba/avro's Writer, as Encode once did.
func hambaEncode(t *testing.T, e *Encoder, row []any) (key, value []byte) {
	t.Helper()
	native := func(typ avro.Type, v any) any {
		switch typ {
		case avro.Int:
			return int32(v.(int64))
		case avro.Float:
			return float32(v.(float64))
		}
		return v
	}
	header := func(w *avro.Writer, id int) {
		var h [5]byte
		binary.BigEndian.PutUint32(h[1:], uint32(id))
		_, _ = w.Write(h[:])
	}
	kw := avro.NewWriter(nil, 16)
	header(kw, e.codec.schemas.Key.ID)
	kw.WriteVal(e.codec.key, native(e.codec.keyType, row[e.keyCol]))
	vw := avro.NewWriter(nil, 64)
	header(vw, e.codec.schemas.Value.ID)
	for _, f := range e.fields {
		vw.WriteVal(f.schema, native(f.typ, row[f.col]))
	}
	if kw.Error != nil || vw.Error != nil {
		t.Fatalf("hamba: %v %v", kw.Error, vw.Error)
	}
	return kw.Buffer(), vw.Buffer()
}

func TestEncodeMatchesHambaForEveryType(t *testing.T) {
	t.Parallel()
	longs := []int64{0, 1, -1, 63, 64, -64, -65, 127, 128, 300, -300, 1 << 31, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}
	ints := []int64{0, 1, -1, 63, 64, -65, 1000, math.MaxInt32, math.MinInt32}
	floats := []float64{0, math.Copysign(0, -1), 1.5, -2.25, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 1e39}
	strs := []string{"", "a", "é", strings.Repeat("x", 63), strings.Repeat("y", 64), strings.Repeat("ü", 200)}
	for _, keyType := range []string{"long", "int"} {
		for _, order := range []string{`["null",%s]`, `[%s,"null"]`, `%s`} {
			field := func(name, typ string) string {
				return fmt.Sprintf(`{"name":%q,"type":%s}`, name, fmt.Sprintf(order, `"`+typ+`"`))
			}
			s := Schemas{
				Key: RegisteredSchema{Subject: "k", ID: 0x7f000001, Schema: `"` + keyType + `"`},
				Value: RegisteredSchema{Subject: "v", ID: 258, Schema: `{"type":"record","name":"V","fields":[` + strings.Join([]string{
					field("L", "long"), field("I", "int"), field("S", "string"), field("D", "double"), field("F", "float"), field("B", "boolean"),
				}, ",") + `]}`},
			}
			cols := []Column{{Name: "k", Type: TypeInt64}, {Name: "l", Type: TypeInt64}, {Name: "i", Type: TypeInt64},
				{Name: "s", Type: TypeString}, {Name: "d", Type: TypeFloat64}, {Name: "f", Type: TypeFloat64}, {Name: "b", Type: TypeBool}}
			e := mustEncoder(t, s, Mapping{KeyColumn: "k"}, cols)
			w := e.NewWriter()
			keys := longs
			if keyType == "int" {
				keys = ints
			}
			n := 0
			for i, k := range keys {
				for j := range max(len(longs), len(floats), len(strs)) {
					row := []any{k, longs[j%len(longs)], ints[(i+j)%len(ints)], strs[j%len(strs)], floats[j%len(floats)], floats[(i+j)%len(floats)], j%2 == 0}
					gotK, gotV, skip, err := w.Encode(row)
					if err != nil || skip != "" {
						t.Fatalf("Encode(%v): skip=%q err=%v", row, skip, err)
					}
					wantK, wantV := hambaEncode(t, e, row)
					if !bytes.Equal(gotK, wantK) || !bytes.Equal(gotV, wantV) {
						t.Fatalf("key %s, union %s, row %v:\n key   %x\n want  %x\n value %x\n want  %x", keyType, order, row, gotK, wantK, gotV, wantV)
					}
					colK, colV, skip, err := w.EncodeColumns(vectorsOf(t, cols, row, row), 1)
					if err != nil || skip != "" || !bytes.Equal(colK, wantK) || !bytes.Equal(colV, wantV) {
						t.Fatalf("EncodeColumns(%v) = %x %x %q %v, want %x %x", row, colK, colV, skip, err, wantK, wantV)
					}
					n++
				}
			}
			if n == 0 {
				t.Fatal("nothing compared")
			}
		}
	}
}

func TestEncodeAllocatesNothing(t *testing.T) {
	e := mustEncoder(t, ksqlSchemas(1, 2), Mapping{KeyColumn: "user_id"}, orderColumns)
	w := e.NewWriter()
	row := []any{int64(123456789), int64(987654321000)}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, _, err := w.Encode(row); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Encode allocates %.0f times per row, want 0", n)
	}
}

func TestEncodeErrorKeepsWriterUsable(t *testing.T) {
	t.Parallel()
	s := ksqlSchemas(1, 2)
	s.Value.Schema = `{"type":"record","name":"V","fields":[{"name":"A","type":"long"},{"name":"B","type":"int"}]}`
	cols := []Column{{Name: "k", Type: TypeInt64}, {Name: "a", Type: TypeInt64}, {Name: "b", Type: TypeInt64}}
	w := mustEncoder(t, s, Mapping{KeyColumn: "k"}, cols).NewWriter()
	if _, _, _, err := w.Encode([]any{int64(1), int64(2), int64(1) << 40}); err == nil || !strings.Contains(err.Error(), `column "b" for field B`) {
		t.Fatalf("want an error naming column b and field B, got %v", err)
	}
	key, value, _, err := w.Encode([]any{int64(1), int64(2), int64(3)})
	if err != nil || !bytes.Equal(key, []byte{0, 0, 0, 0, 1, 2}) || !bytes.Equal(value, []byte{0, 0, 0, 0, 2, 4, 6}) {
		t.Fatalf("after an error: %x %x %v", key, value, err)
	}
}

// vectorsOf lays rows out column by column, as RowReader.NextColumns does.
func vectorsOf(t *testing.T, cols []Column, rows ...[]any) []Vector {
	t.Helper()
	out := make([]Vector, len(cols))
	for _, row := range rows {
		for j, c := range cols {
			v, x := &out[j], row[j]
			v.Null = append(v.Null, x == nil)
			switch c.Type {
			case TypeInt64:
				y, _ := x.(int64)
				v.Int64 = append(v.Int64, y)
			case TypeFloat64:
				y, _ := x.(float64)
				v.Float64 = append(v.Float64, y)
			case TypeString:
				y, _ := x.(string)
				v.String = append(v.String, y)
			case TypeBool:
				y, _ := x.(bool)
				v.Bool = append(v.Bool, y)
			}
		}
	}
	return out
}

func TestEncodeColumnsSkipsAndFailsAsEncodeDoes(t *testing.T) {
	t.Parallel()
	s := ksqlSchemas(1, 2)
	s.Value.Schema = `{"type":"record","name":"V","fields":[{"name":"A","type":"long"},{"name":"B","type":"int"}]}`
	cols := []Column{{Name: "k", Type: TypeInt64}, {Name: "a", Type: TypeInt64}, {Name: "b", Type: TypeInt64}}
	w := mustEncoder(t, s, Mapping{KeyColumn: "k"}, cols).NewWriter()
	rows := [][]any{{nil, int64(2), int64(3)}, {int64(1), nil, int64(3)}, {int64(1), int64(2), int64(1) << 40}, {int64(1), int64(2), int64(3)}}
	vecs := vectorsOf(t, cols, rows...)
	for i, row := range rows {
		k1, v1, skip1, err1 := w.Encode(row)
		k1, v1 = bytes.Clone(k1), bytes.Clone(v1)
		k2, v2, skip2, err2 := w.EncodeColumns(vecs, i)
		if skip1 != skip2 || fmt.Sprint(err1) != fmt.Sprint(err2) || !bytes.Equal(k1, k2) || !bytes.Equal(v1, v2) {
			t.Fatalf("row %v: Encode %x %x %q %v; EncodeColumns %x %x %q %v", row, k1, v1, skip1, err1, k2, v2, skip2, err2)
		}
	}
}

func TestEncodeColumnsAllocatesNothing(t *testing.T) {
	e := mustEncoder(t, ksqlSchemas(1, 2), Mapping{KeyColumn: "user_id"}, orderColumns)
	w := e.NewWriter()
	vecs := vectorsOf(t, orderColumns, []any{int64(123456789), int64(987654321000)})
	if n := testing.AllocsPerRun(100, func() {
		if _, _, _, err := w.EncodeColumns(vecs, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("EncodeColumns allocates %.0f times per row, want 0", n)
	}
}
