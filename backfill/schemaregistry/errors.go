package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/riferrei/srclient"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Registry error codes the client tells apart.
const (
	codeSubjectNotFound = 40401
	codeVersionNotFound = 40402
	codeSchemaNotFound  = 40403
)

// explain turns the failure of fetching what (call's error) into a
// classified error that says what to do. It never includes the password:
// httpc removed it from the error and from the registry's answer.
func (c *Client) explain(ctx context.Context, what, subject string, sel selector, err error) error {
	reg := c.base
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return backfill.Errorf(backfill.KindUnavailable, "schema registry %s: the run's deadline passed while fetching %s: %w", reg, what, err)
		}
		return backfill.Errorf(backfill.KindInterrupted, "interrupted while fetching %s from schema registry %s: %w", what, reg, err)
	}
	var failed *httpc.Error
	if !errors.As(err, &failed) {
		return backfill.Errorf(backfill.KindInternal, "schema registry %s, fetching %s: srclient failed before sending a request: %w", reg, what, err)
	}
	msg, code := failed.Error(), 0
	var se srclient.Error
	if errors.As(failed, &se) {
		code = se.Code
		if se.Message != "" {
			msg = se.Message // from the answer's body, which httpc redacted
		}
	}
	detail := msg
	if failed.Status != 0 {
		detail = fmt.Sprintf("HTTP %d: %s", failed.Status, msg)
	}
	switch st := failed.Status; {
	case httpc.Untrusted(failed):
		return backfill.Errorf(backfill.KindConfig, "schema registry %s, fetching %s: %w", reg, what, failed)
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		if c.user == "" {
			return backfill.Errorf(backfill.KindConfig, "schema registry %s requires authentication (%s): set schema_registry.username and schema_registry.password", reg, detail)
		}
		return backfill.Errorf(backfill.KindConfig, "schema registry %s refused user %q fetching %s (%s): check schema_registry username/password", reg, c.user, what, detail)
	case st == http.StatusNotFound && code == codeSubjectNotFound:
		return backfill.Errorf(backfill.KindContract, "subject %q not found in schema registry %s: create the stream in ksqlDB first (CREATE STREAM registers both subjects), or check kafka topic / registry URL", subject, reg)
	case st == http.StatusNotFound && code == codeVersionNotFound:
		return backfill.Errorf(backfill.KindContract, "%s not found in schema registry %s: fix %s (a version listed by GET /subjects/%s/versions) or use \"latest\"", what, reg, sel.field, subject)
	case st == http.StatusNotFound && code == codeSchemaNotFound:
		return backfill.Errorf(backfill.KindContract, "%s not found in schema registry %s: fix %s or use \"latest\"", what, reg, sel.field)
	case failed.Retryable:
		return backfill.Errorf(backfill.KindUnavailable, "schema registry %s unavailable: fetching %s failed %d time(s) (timeout %s per request), last: %s", reg, what, failed.Attempts, c.hc.Timeout, detail)
	case st >= 200 && st < 300:
		return backfill.Errorf(backfill.KindConfig, "schema registry %s answered %s with something that is not a Schema Registry response (%s): check schema_registry.url", reg, what, msg)
	default:
		return backfill.Errorf(backfill.KindConfig, "schema registry %s rejected the request for %s (%s): check schema_registry.url", reg, what, detail)
	}
}
