package backfill

import "testing"

func TestParseSchemaSelector(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]SchemaSelector{
		"": {}, "latest": {}, " latest ": {}, "3": {Version: 3}, "id:42": {ID: 42}, "id: 7": {ID: 7},
	} {
		if got, err := ParseSchemaSelector(in); err != nil || got != want {
			t.Errorf("ParseSchemaSelector(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"newest", "0", "-1", "id:", "id:0", "v3", "3.0", "99999999999"} {
		if _, err := ParseSchemaSelector(in); err == nil {
			t.Errorf("ParseSchemaSelector(%q) accepted it", in)
		}
	}
}
