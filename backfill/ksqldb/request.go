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
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Media types of the ksqlDB REST API.
const (
	mediaKsql      = "application/vnd.ksql.v1+json"
	mediaDelimited = "application/vnd.ksqlapi.delimited.v1"
)

// transportError is a failure to reach the server or to read its whole
// answer; it is retried.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// protocolError is a 2xx answer the client cannot understand.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

// call sends one request, retrying as the shared policy says (httpc:
// 429, 5xx and transport failures, with exponential backoff, jitter and
// the server's Retry-After), and hands a 2xx answer to read. body nil
// sends a GET. The error returned is classified with a backfill kind.
func (c *Client) call(ctx context.Context, path string, body any, accept string, read func(io.Reader) error) error {
	method := http.MethodGet
	var payload []byte
	if body != nil {
		method = http.MethodPost
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return backfill.Errorf(backfill.KindInternal, "encoding the request to %s: %v", path, err)
		}
	}
	endpoint := method + " " + path
	attempts, err := c.policy.Do(ctx, func(int) (time.Duration, bool, error) {
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		wait, err := c.once(ctx, method, path, payload, accept, read)
		var (
			apiErr *APIError
			trErr  *transportError
		)
		switch {
		case err == nil:
			return 0, false, nil
		case errors.As(err, &apiErr):
			apiErr.Endpoint = endpoint
			apiErr.Message, apiErr.Text = httpc.Redact(apiErr.Message, c.pass), httpc.Redact(apiErr.Text, c.pass)
			return wait, apiErr.retryable(), err
		case errors.As(err, &trErr):
			return 0, httpc.RetryableError(trErr.err), err
		}
		return 0, false, err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctxErr(ctx, "calling ksqlDB "+endpoint)
	}
	var (
		apiErr   *APIError
		trErr    *transportError
		protoErr *protocolError
	)
	switch {
	case errors.As(err, &apiErr):
		return classify(apiErr)
	case errors.As(err, &trErr):
		return backfill.Errorf(backfill.KindUnavailable, "ksqlDB %s at %s is unreachable after %d attempts: %s", endpoint, c.base, attempts, httpc.Redact(trErr.err.Error(), c.pass))
	case errors.As(err, &protoErr):
		return backfill.Errorf(backfill.KindContract, "ksqlDB answered %s with something this client does not understand (is it a ksqlDB server?): %v", endpoint, protoErr.err)
	}
	return err
}

// once sends one request. It returns the server's Retry-After, if any.
func (c *Client) once(ctx context.Context, method, path string, payload []byte, accept string, read func(io.Reader) error) (time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(rctx, method, c.base.String()+path, body)
	if err != nil {
		return 0, backfill.Errorf(backfill.KindConfig, "building the ksqlDB request: %v", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", mediaKsql+"; charset=utf-8")
	}
	req.Header.Set("Accept", accept)
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if httpc.Untrusted(err) {
			// Retrying cannot help: the certificate is not trusted.
			return 0, backfill.Errorf(backfill.KindConfig, "ksqlDB at %s: %s", c.base, httpc.Redact(httpc.ExplainUntrusted("ksqldb", err), c.pass))
		}
		return 0, &transportError{err}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return httpc.RetryAfter(resp.Header.Get("Retry-After")), decodeAPIError(resp.StatusCode, resp.Body)
	}
	if err := read(resp.Body); err != nil {
		var apiErr *APIError
		var netErr net.Error
		switch {
		case errors.As(err, &apiErr):
			return 0, err
		case rctx.Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr):
			return 0, &transportError{fmt.Errorf("reading the answer: %w", err)}
		}
		return 0, &protocolError{err}
	}
	return 0, nil
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
