package bigquery

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// The exit code follows the error's reason, as BigQuery
// documents it (cloud.google.com/bigquery/docs/error-messages), not its
// HTTP status: jobInternalError is a 400 that BigQuery says to retry,
// responseTooLarge a 403 that is no permission problem. Each reason is
// checked as a REST error (googleapi.Error) and as a failed job's status
// (bigquery.Error).
func TestClassifyByReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason     string
		code       int
		want       backfill.Kind
		say        string // the message names this
		permission bool   // the message speaks of permissions
	}{
		{"backendError", http.StatusInternalServerError, backfill.KindSource, "retry", false},
		{"backendError", http.StatusBadRequest, backfill.KindSource, "retry", false},
		{"internalError", http.StatusInternalServerError, backfill.KindSource, "retry", false},
		{"jobInternalError", http.StatusBadRequest, backfill.KindSource, "retry", false},
		{"rateLimitExceeded", http.StatusForbidden, backfill.KindSource, "rate limit", false},
		{"quotaExceeded", http.StatusForbidden, backfill.KindConfig, "quota", false},
		{"accessDenied", http.StatusForbidden, backfill.KindConfig, "bigquery.jobUser", true},
		{"invalid", http.StatusBadRequest, backfill.KindConfig, "invalid", false},
		{"invalidQuery", http.StatusBadRequest, backfill.KindConfig, "bigquery.query", false},
		{"notFound", http.StatusNotFound, backfill.KindConfig, "location", false},
		{"responseTooLarge", http.StatusForbidden, backfill.KindConfig, "too large", false},
	} {
		for name, err := range map[string]error{
			"REST":       &googleapi.Error{Code: tc.code, Message: "bq says " + tc.reason, Errors: []googleapi.ErrorItem{{Reason: tc.reason, Message: "bq says " + tc.reason}}},
			"failed job": &bigquery.Error{Reason: tc.reason, Message: "bq says " + tc.reason},
		} {
			got := classify(err, "running the query")
			msg := got.Error()
			if backfill.KindOf(got) != tc.want {
				t.Errorf("%s %s (%d): kind %s, want %s: %s", name, tc.reason, tc.code, backfill.KindOf(got), tc.want, msg)
			}
			if !strings.Contains(msg, tc.say) || !strings.Contains(msg, tc.reason) {
				t.Errorf("%s %s: message %q does not name %q and the reason", name, tc.reason, msg, tc.say)
			}
			if p := strings.Contains(msg, "permission"); p != tc.permission {
				t.Errorf("%s %s: message %q speaks of permissions: %v, want %v", name, tc.reason, msg, p, tc.permission)
			}
			if !errors.Is(got, err) {
				t.Errorf("%s %s: the cause is not wrapped", name, tc.reason)
			}
		}
	}
}

// The Storage Read API's errors are told apart by gRPC code and the
// ErrorInfo reason, not by the message's wording.
func TestClassifyRPCByCodeAndErrorInfo(t *testing.T) {
	t.Parallel()
	withInfo := func(c codes.Code, msg, reason string) error {
		st, err := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "googleapis.com"})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		err  error
		want backfill.Kind
		say  string
	}{
		{status.Error(codes.Unavailable, "connection reset"), backfill.KindSource, "Unavailable"},
		{status.Error(codes.Internal, "stream removed"), backfill.KindSource, "Internal"},
		{withInfo(codes.PermissionDenied, "Permission denied on resource project p.", "SERVICE_DISABLED"), backfill.KindConfig, "enable bigquerystorage.googleapis.com"},
		{withInfo(codes.PermissionDenied, "caller does not have permission", "IAM_PERMISSION_DENIED"), backfill.KindConfig, "readSessionUser"},
		{withInfo(codes.ResourceExhausted, "Exceeded rate limits", "RATE_LIMIT_EXCEEDED"), backfill.KindSource, "rate limit"},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5242880 vs. 4194304)"), backfill.KindConfig, "receive limit"},
	} {
		got := classifyRPC(tc.err, "reading")
		if backfill.KindOf(got) != tc.want || !strings.Contains(got.Error(), tc.say) {
			t.Errorf("classifyRPC(%v) = %v (kind %s), want kind %s naming %q", tc.err, got, backfill.KindOf(got), tc.want, tc.say)
		}
	}
}
