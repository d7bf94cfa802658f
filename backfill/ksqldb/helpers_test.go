package ksqldb

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testClient returns a client of h with fast backoff.
func testClient(t *testing.T, h http.Handler, mod func(*Config)) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{URL: srv.URL, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second, Retries: 5, Stream: "stream_order_insert", Table: "table_min_order"}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
