package ksqldb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Media types of the ksqlDB REST API.
const (
	mediaKsql      = "application/vnd.ksql.v1+json"
	mediaDelimited = "application/vnd.ksqlapi.delimited.v1"
)

// call sends one request through httpc.Client.Do (retries as the shared
// policy says: 429, 5xx, transport failures and the server's own retryable
// answers, see APIError.Retryable) and hands a 2xx answer to read. body nil
// sends a GET. The error returned is classified with a backfill kind.
func (c *Client) call(ctx context.Context, path string, body any, accept string, read func(io.Reader) error) error {
	method := http.MethodGet
	var payload []byte
	if body != nil {
		method = http.MethodPost
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return backfill.Errorf(backfill.KindInternal, "encoding the request to %s: %w", path, err)
		}
	}
	endpoint := method + " " + path
	err := c.hc.Do(ctx, func(ctx context.Context, hc *http.Client) error {
		err := c.once(ctx, hc, method, path, payload, accept, read)
		if apiErr := (*APIError)(nil); errors.As(err, &apiErr) {
			apiErr.Endpoint = endpoint
		}
		return err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctxErr(ctx, "calling ksqlDB "+endpoint)
	}
	var (
		failed *httpc.Error
		apiErr *APIError
	)
	switch {
	case !errors.As(err, &failed):
		return err // building the request failed
	case httpc.Untrusted(failed):
		// Retrying cannot help: the certificate is not trusted.
		return backfill.Errorf(backfill.KindConfig, "ksqlDB at %s: %w", c.base, failed)
	case errors.As(failed, &apiErr):
		return classify(apiErr, failed)
	case failed.Status == 0 || failed.Retryable: // no answer, or one cut short
		return backfill.Errorf(backfill.KindUnavailable, "ksqlDB %s at %s is unreachable after %d attempts: %w", endpoint, c.base, failed.Attempts, failed)
	}
	return backfill.Errorf(backfill.KindContract, "ksqlDB answered %s with something this client does not understand (is it a ksqlDB server?): %w", endpoint, failed)
}

// once sends one request with hc and reads its answer.
func (c *Client) once(ctx context.Context, hc *http.Client, method, path string, payload []byte, accept string, read func(io.Reader) error) error {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return backfill.Errorf(backfill.KindConfig, "building the ksqlDB request: %w", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", mediaKsql+"; charset=utf-8")
	}
	req.Header.Set("Accept", accept)
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeAPIError(resp.StatusCode, resp.Body)
	}
	if err := read(resp.Body); err != nil {
		var (
			apiErr *APIError
			netErr net.Error
		)
		if !errors.As(err, &apiErr) && (ctx.Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)) {
			return fmt.Errorf("reading the answer: %w", err) // cut short: httpc retries it
		}
		return err
	}
	return nil
}

// decodeAPIError reads an error answer; a body that is not the API's error
// JSON becomes the message.
func decodeAPIError(status int, r io.Reader) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(r, 1<<16))
	e := &APIError{Status: status}
	if json.Unmarshal(raw, e) != nil || (e.Code == 0 && e.Message == "") {
		e.Type, e.Code = "", 0
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	return e
}
