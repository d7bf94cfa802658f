package bigquery

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/googleapi"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// The emulator-backed tests of this source live in internal/e2e (one
// package links the emulator); these cover the parts that need no server.

func TestQueryParamsAreTyped(t *testing.T) {
	t.Parallel()
	ps, err := queryParams([]Param{
		{"s", "", "x"}, {"n", "INT64", "-42"}, {"f", "FLOAT64", "1.5"}, {"b", "BOOL", "true"},
		{"d", "DATE", "2024-02-29"}, {"ts", "TIMESTAMP", "2024-01-02T03:04:05Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"x", int64(-42), 1.5, true, civil.Date{Year: 2024, Month: 2, Day: 29}, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	for i, p := range ps {
		if p.Value != want[i] {
			t.Errorf("param %s = %#v, want %#v", p.Name, p.Value, want[i])
		}
	}
	if _, err := queryParams([]Param{{"n", "INT64", "twelve"}}); err == nil {
		t.Error("want an error for a non-integer INT64 parameter")
	}
}

func TestColumnsMapBigQueryTypes(t *testing.T) {
	t.Parallel()
	got := columns(bigquery.Schema{
		{Name: "user_id", Type: bigquery.IntegerFieldType},
		{Name: "s", Type: bigquery.StringFieldType},
		{Name: "f", Type: bigquery.FloatFieldType},
		{Name: "b", Type: bigquery.BooleanFieldType},
		{Name: "n", Type: bigquery.NumericFieldType},
		{Name: "a", Type: bigquery.IntegerFieldType, Repeated: true},
	})
	want := []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "s", Type: backfill.TypeString},
		{Name: "f", Type: backfill.TypeFloat64}, {Name: "b", Type: backfill.TypeBool}, {Name: "n", Type: "NUMERIC"},
		{Name: "a", Type: backfill.TypeInt64, Repeated: true}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestClassifyTellsRetryableFromNot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want backfill.Kind
	}{
		{&googleapi.Error{Code: http.StatusForbidden}, backfill.KindConfig},
		{&googleapi.Error{Code: http.StatusForbidden, Errors: []googleapi.ErrorItem{{Reason: "accessDenied"}}}, backfill.KindConfig},
		// A transient 403: a retry (another pod of the Job) may succeed.
		{&googleapi.Error{Code: http.StatusForbidden, Errors: []googleapi.ErrorItem{{Reason: "rateLimitExceeded"}}}, backfill.KindSource},
		// A used-up quota is not (TestClassifyByReason).
		{&googleapi.Error{Code: http.StatusForbidden, Errors: []googleapi.ErrorItem{{Reason: "quotaExceeded"}}}, backfill.KindConfig},
		{&googleapi.Error{Code: http.StatusBadRequest, Message: "Syntax error"}, backfill.KindConfig},
		{&googleapi.Error{Code: http.StatusNotFound}, backfill.KindConfig},
		{&googleapi.Error{Code: http.StatusServiceUnavailable}, backfill.KindSource},
		{errors.New("connection reset"), backfill.KindSource},
	} {
		if got := backfill.KindOf(classify(tc.err, "reading")); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
