package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Registry error codes the client tells apart.
const (
	codeSubjectNotFound = 40401
	codeVersionNotFound = 40402
	codeSchemaNotFound  = 40403
)

// explain turns the failure of fetching what into a classified error that
// says what to do. It never includes the password.
func (c *Client) explain(ctx context.Context, what, subject string, sel selector, fl *failure) error {
	reg := c.base
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return backfill.Errorf(backfill.KindUnavailable, "schema registry %s: the run's deadline passed while fetching %s: %w", reg, what, err)
		}
		return backfill.Errorf(backfill.KindInterrupted, "interrupted while fetching %s from schema registry %s: %w", what, reg, err)
	}
	detail := fl.msg
	if fl.status != 0 {
		detail = fmt.Sprintf("HTTP %d: %s", fl.status, fl.msg)
	}
	switch {
	case fl.certificate != "":
		return backfill.Errorf(backfill.KindConfig, "schema registry %s, fetching %s: %s", reg, what, fl.certificate)
	case fl.status == http.StatusUnauthorized || fl.status == http.StatusForbidden:
		if c.user == "" {
			return backfill.Errorf(backfill.KindConfig, "schema registry %s requires authentication (%s): set schema_registry.username and schema_registry.password", reg, detail)
		}
		return backfill.Errorf(backfill.KindConfig, "schema registry %s refused user %q fetching %s (%s): check schema_registry username/password", reg, c.user, what, detail)
	case fl.status == http.StatusNotFound && fl.code == codeSubjectNotFound:
		return backfill.Errorf(backfill.KindContract, "subject %q not found in schema registry %s: create the stream in ksqlDB first (CREATE STREAM registers both subjects), or check kafka topic / registry URL", subject, reg)
	case fl.status == http.StatusNotFound && fl.code == codeVersionNotFound:
		return backfill.Errorf(backfill.KindContract, "%s not found in schema registry %s: fix %s (a version listed by GET /subjects/%s/versions) or use \"latest\"", what, reg, sel.field, subject)
	case fl.status == http.StatusNotFound && fl.code == codeSchemaNotFound:
		return backfill.Errorf(backfill.KindContract, "%s not found in schema registry %s: fix %s or use \"latest\"", what, reg, sel.field)
	case fl.retryable():
		return backfill.Errorf(backfill.KindUnavailable, "schema registry %s unavailable: fetching %s failed %d time(s) (timeout %s per request), last: %s", reg, what, fl.attempts, c.timeout, detail)
	case fl.status >= 200 && fl.status < 300:
		return backfill.Errorf(backfill.KindConfig, "schema registry %s answered %s with something that is not a Schema Registry response (%s): check schema_registry.url", reg, what, fl.msg)
	default:
		return backfill.Errorf(backfill.KindConfig, "schema registry %s rejected the request for %s (%s): check schema_registry.url", reg, what, detail)
	}
}
