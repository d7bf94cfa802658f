package bigquery

import (
	"errors"
	"net/http"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// retryableReasons are the BigQuery error reasons a retry may pass
// (cloud.google.com/bigquery/docs/error-messages; the official client
// retries backendError, internalError, rateLimitExceeded and
// jobRateLimitExceeded), whatever the HTTP status: jobInternalError comes
// with 400, rateLimitExceeded with 403.
var retryableReasons = map[string]bool{
	"backendError": true, "internalError": true, "jobInternalError": true, "jobBackendError": true,
	"rateLimitExceeded": true, "jobRateLimitExceeded": true,
}

// retryableReason reports whether a retry may pass a failure with reason.
func retryableReason(reason string) bool { return retryableReasons[reason] }

// errorReason returns the reason BigQuery gave for err: a REST error's
// first reason (googleapi.Error.Errors) or a failed job's
// (bigquery.Error); "" when there is none. code is the HTTP status, 0 for
// a failed job.
func errorReason(err error) (reason string, code int) {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		for _, it := range gerr.Errors {
			if it.Reason != "" {
				return it.Reason, gerr.Code
			}
		}
		return "", gerr.Code
	}
	var jerr *bigquery.Error
	if errors.As(err, &jerr) {
		return jerr.Reason, 0
	}
	return "", 0
}

// permissionHint is what to check on a permission failure.
const permissionHint = "check the credentials (Workload Identity, bigquery.credentials_file) and the roles: bigquery.jobUser and serviceusage.services.use (roles/serviceusage.serviceUsageConsumer) on the project that runs the job and on the quota project (bigquery.billing_project), bigquery.dataViewer on the source data and bigquery.dataEditor on destination_table's dataset (plus bigquery.readSessionUser for the Storage Read API)"

// classify turns a BigQuery REST error or failed job into a backfill
// error whose kind says whether retrying can help: exit 4 (KindSource)
// for the reasons BigQuery says to retry, exit 2 (KindConfig) for those
// a retry fails the same way. The reason decides, not the HTTP status.
func classify(err error, what string) error {
	if te, ok := asTokenError(err); ok {
		// No token to call with: the credentials' failure, explained.
		return backfill.Errorf(te.kind, "%s: %w", what, te)
	}
	reason, code := errorReason(err)
	if retryableReason(reason) {
		if strings.Contains(reason, "RateLimit") || strings.HasPrefix(reason, "rateLimit") {
			return backfill.Errorf(backfill.KindSource, "%s: BigQuery is rate limiting the project (reason %s): a retry later may succeed: %w", what, reason, err)
		}
		return backfill.Errorf(backfill.KindSource, "%s: BigQuery reports a transient failure (reason %s), which it says to retry: the Job's next attempt may succeed: %w", what, reason, err)
	}
	switch reason {
	case "quotaExceeded":
		return backfill.Errorf(backfill.KindConfig, "%s: a BigQuery quota is used up (reason quotaExceeded): a retry fails the same way until the quota resets; see the quotas of the project and of bigquery.billing_project: %w", what, err)
	case "accessDenied":
		return backfill.Errorf(backfill.KindConfig, "%s: permission denied (reason accessDenied): %s: %w", what, permissionHint, err)
	case "responseTooLarge":
		return backfill.Errorf(backfill.KindConfig, "%s: the query's result is too large for an anonymous result table (reason responseTooLarge): set bigquery.destination_table to a scratch dataset: %w", what, err)
	case "invalidQuery":
		return backfill.Errorf(backfill.KindConfig, "%s: BigQuery refused the query (reason invalidQuery): check bigquery.query (or bigquery.table and bigquery.order_column) and bigquery.params: %w", what, err)
	case "notFound":
		return backfill.Errorf(backfill.KindConfig, "%s: not found (reason notFound): check bigquery.project, bigquery.table, bigquery.destination_table and bigquery.location (a job outside the US and EU multi-regions is found only in its location): %w", what, err)
	case "":
	default:
		if code >= 500 || code == http.StatusTooManyRequests {
			break // an unknown reason on a server error: the status decides
		}
		return backfill.Errorf(backfill.KindConfig, "%s: BigQuery refused the request (reason %s), which a retry does not change: check bigquery.query/table, params, location and destination_table: %w", what, reason, err)
	}
	switch {
	case code == http.StatusUnauthorized || (code == http.StatusForbidden && reason == ""):
		return backfill.Errorf(backfill.KindConfig, "%s: permission denied (HTTP %d): %s: %w", what, code, permissionHint, err)
	case code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout:
		return backfill.Errorf(backfill.KindConfig, "%s: BigQuery refused the request (HTTP %d): check bigquery.query/table, params and location: %w", what, code, err)
	}
	return backfill.Errorf(backfill.KindSource, "%s: %w", what, err)
}

// grpcRecvLimit is the most bytes one Storage Read API response may take:
// BigQuery sends up to 128 MiB, and the official client allows 129 MiB
// (cloud.google.com/go/bigquery v1.86.2 storage_client.go).
const grpcRecvLimit = 129 << 20

// errorInfoReason returns the ErrorInfo reason of a gRPC status, if any.
func errorInfoReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// classifyRPC turns a Storage Read API error into a backfill error naming
// the cause and the fix, by gRPC code and ErrorInfo reason.
func classifyRPC(err error, what string) error {
	if te, ok := asTokenError(err); ok {
		return backfill.Errorf(te.kind, "%s: %w", what, te)
	}
	st, ok := status.FromError(err)
	if !ok {
		return backfill.Errorf(backfill.KindSource, "%s: %w", what, err)
	}
	msg, reason := st.Message(), errorInfoReason(st)
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		if reason == "SERVICE_DISABLED" || strings.Contains(msg, "has not been used") || strings.Contains(msg, "is disabled") {
			return backfill.Errorf(backfill.KindConfig, "%s: the BigQuery Storage API is not enabled for the billing project (%s): enable bigquerystorage.googleapis.com there, or set bigquery.read_api=rest: %w", what, msg, err)
		}
		return backfill.Errorf(backfill.KindConfig, "%s: permission denied (%s): grant the job's service account roles/bigquery.readSessionUser (bigquery.readsessions.create) and serviceusage.services.use on the billing project and read access to the table, or set bigquery.read_api=rest: %w", what, msg, err)
	case codes.ResourceExhausted:
		if strings.Contains(msg, "larger than max") {
			return backfill.Errorf(backfill.KindConfig, "%s: a Storage Read API response exceeds the gRPC receive limit (%s; the job allows %d MiB, as the official client does, and BigQuery sends at most 128 MiB): check that bigquery.storage_endpoint is BigQuery, or set bigquery.read_api=rest: %w", what, msg, grpcRecvLimit>>20, err)
		}
		return backfill.Errorf(backfill.KindSource, "%s: Storage Read API quota or rate limit (%s, reason %q): a retry later may succeed: %w", what, msg, reason, err)
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented:
		return backfill.Errorf(backfill.KindConfig, "%s: the Storage Read API refused the request (%s %s): check bigquery.destination_table and bigquery.read_streams, or set bigquery.read_api=rest: %w", what, st.Code(), msg, err)
	}
	return backfill.Errorf(backfill.KindSource, "%s: %s: %s: %w", what, st.Code(), msg, err)
}
