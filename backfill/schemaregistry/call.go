package schemaregistry

import (
	"context"
	"errors"
	"net/http"

	"github.com/riferrei/srclient"

	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// call runs f against a fresh srclient through httpc.Client.Do, which
// retries as the shared policy says (429, 5xx and transport failures, with
// exponential backoff, jitter and the server's Retry-After), bounds each
// attempt by schema_registry.timeout and keeps the password out of the
// error. srclient has no context support: the *http.Client Do hands each
// attempt ties every request to ctx. The error is nil, an *httpc.Error, or
// what srclient failed with before sending a request; the caller checks
// ctx.Err() first.
func call[T any](ctx context.Context, c *Client, f func(*srclient.SchemaRegistryClient) (T, error)) (T, error) {
	var v T
	err := c.hc.Do(ctx, func(_ context.Context, hc *http.Client) error {
		sr := srclient.NewSchemaRegistryClient(c.base, srclient.WithClient(hc))
		sr.CachingEnabled(false)
		sr.CodecCreationEnabled(false)
		sr.SetCredentials(c.user, c.pass)
		var err error
		v, err = f(sr)
		return err
	})
	return v, err
}

// status returns the HTTP status of the answer err failed on; 0 when none
// arrived.
func status(err error) int {
	var failed *httpc.Error
	if errors.As(err, &failed) {
		return failed.Status
	}
	return 0
}
