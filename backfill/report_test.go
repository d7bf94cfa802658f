package backfill

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestJSONWithinNamesOnlyWhatItDropped: "truncated" names the detail
// lists the report had and lost, not every list it could have dropped.
func TestJSONWithinNamesOnlyWhatItDropped(t *testing.T) {
	t.Parallel()
	r := Report{Status: "failed", Error: strings.Repeat("a long error ", 1000), DeliveryErrors: []string{"Local: Message timed out"}}
	out := r.JSONWithin(4096)
	var got Report
	if err := json.Unmarshal(out, &got); err != nil || len(out) > 4096 {
		t.Fatalf("%d bytes, %v", len(out), err)
	}
	if want := []string{"delivery_errors", "error"}; !slices.Equal(got.Truncated, want) {
		t.Errorf("truncated = %q, want %q", got.Truncated, want)
	}
}
