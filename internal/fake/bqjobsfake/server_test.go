package bqjobsfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

var schema = &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "note", Type: "STRING"}}}

// start serves rows rows: row i is user i+1 with note(i).
func start(t *testing.T, rows uint64, note func(i uint64) string) (*Server, *bigquery.Client) {
	t.Helper()
	s, err := Start(&bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "result"}, rows, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.Row = func(i uint64) *bq.TableRow {
		return &bq.TableRow{F: []*bq.TableCell{{V: strconv.FormatUint(i+1, 10)}, {V: note(i)}}}
	}
	c, err := bigquery.NewClient(context.Background(), "p", option.WithEndpoint(s.URL()), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

// read runs a query and reads its result from startIndex through the
// client's RowIterator, pageSize rows per page (0: the client's default,
// no maxResults), checking that row i is user i+1 with note(i).
func read(t *testing.T, c *bigquery.Client, pageSize int, startIndex uint64, note func(i uint64) string) int {
	t.Helper()
	ctx := context.Background()
	job, err := c.Query("SELECT user_id, note FROM d.t").Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	it, err := job.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	it.PageInfo().MaxSize, it.StartIndex = pageSize, startIndex
	n := 0
	for i := startIndex; ; i++ {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(row) != 2 || row[0] != int64(i+1) || row[1] != note(i) {
			t.Fatalf("row %d: got user %v, want %d (and its note)", i, row[0], i+1)
		}
		n++
	}
}

// The client's page size reaches the double as maxResults, and the double
// pages as BigQuery does: at most maxResults rows, a pageToken while rows
// remain; waitForQuery's maxResults=0 reads none.
func TestGetQueryResultsHonoursMaxResultsAndPageTokens(t *testing.T) {
	note := func(i uint64) string { return "n" + strconv.FormatUint(i, 10) }
	s, c := start(t, 2500, note)
	if n := read(t, c, 1000, 0, note); n != 2500 {
		t.Fatalf("read %d rows, want 2500", n)
	}
	got := s.ResultReads()
	want := []struct {
		max  int64
		rows int
		next string
	}{{0, 0, "bqjobsfake-row-0"}, {1000, 1000, "bqjobsfake-row-1000"}, {1000, 1000, "bqjobsfake-row-2000"}, {1000, 500, ""}}
	if len(got) != len(want) {
		t.Fatalf("getQueryResults calls %+v, want %d", got, len(want))
	}
	for k, w := range want {
		if g := got[k]; g.MaxResults != w.max || g.Rows != w.rows || g.NextToken != w.next {
			t.Fatalf("call %d: %+v, want maxResults %d, %d rows, next token %q (all calls %+v)", k, g, w.max, w.rows, w.next, got)
		}
	}
	if got[2].PageToken != got[1].NextToken || got[3].PageToken != got[2].NextToken {
		t.Fatalf("the client did not follow the page tokens: %+v", got)
	}
	if n := read(t, c, 0, 2400, note); n != 100 {
		t.Fatalf("from startIndex 2400: read %d rows, want 100", n)
	}
}

// Without maxResults only the byte limit applies: replies of at most 10 MB.
func TestGetQueryResultsRepliesAreLimitedTo10MB(t *testing.T) {
	const rows = 25
	big := strings.Repeat("x", 1<<20)
	note := func(i uint64) string { return big[:len(big)-int(i)] }
	s, c := start(t, rows, note)
	if n := read(t, c, 0, 0, note); n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
	var pages []int
	for _, r := range s.ResultReads() {
		if r.MaxResults != -1 && r.MaxResults != 0 {
			t.Fatalf("the client asked for maxResults %d with no page size set", r.MaxResults)
		}
		if r.Rows > 0 {
			pages = append(pages, r.Rows)
		}
	}
	// Rows of about 1 MiB: 9 fit in 10 MiB with their JSON framing, 10 do not.
	if fmt.Sprint(pages) != "[9 9 7]" {
		t.Fatalf("pages of %v rows, want [9 9 7] (%+v)", pages, s.ResultReads())
	}
}

func TestGetQueryResultsRefusesATokenItDidNotIssue(t *testing.T) {
	s, c := start(t, 10, func(uint64) string { return "" })
	ctx := context.Background()
	job, err := c.Query("SELECT 1").Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	it, err := job.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	it.PageInfo().Token = "not-a-token"
	var row []bigquery.Value
	err = it.Next(&row)
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != http.StatusBadRequest {
		t.Fatalf("err %v, want 400 for a page token the double did not issue (reads %+v)", err, s.ResultReads())
	}
}
