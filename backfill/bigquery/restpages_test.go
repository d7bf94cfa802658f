package bigquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqjobsfake"
)

// restJobs is the jobs double serving n result rows over REST: user i+1
// with order 1000*(i+1), every 97th user a NULL order (as ordersRecord).
func restJobs(t *testing.T, n int) *bqjobsfake.Server {
	t.Helper()
	jobs := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}, uint64(n), intSchema("user_id", "min_order_id"))
	jobs.Row = func(i uint64) *bq.TableRow {
		u := i + 1
		order := any(strconv.FormatUint(1000*u, 10))
		if u%97 == 0 {
			order = nil
		}
		return &bq.TableRow{F: []*bq.TableCell{{V: strconv.FormatUint(u, 10)}, {V: order}}}
	}
	return jobs
}

// openRESTResult opens the default query's result over REST with page rows per
// page (0: the default); the reader is closed when the test ends.
func openRESTResult(t *testing.T, jobs *bqjobsfake.Server, page int) backfill.RowReader {
	t.Helper()
	r, err := New(Config{Project: "p", Endpoint: jobs.URL(), Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id",
		ShardCount: 1, ReadAPI: ReadREST, QueryTimeout: 30 * time.Second, RESTPageRows: page}, nil).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readREST reads the whole result over REST with page rows per page (0:
// the default) and returns each getQueryResults call that returned rows.
func readREST(t *testing.T, jobs *bqjobsfake.Server, n, page int) []bqjobsfake.ResultRead {
	t.Helper()
	r := openRESTResult(t, jobs, page)
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	checkOrders(t, got, usersUpTo(n))
	if total, known := r.TotalRows(); !known || total != uint64(n) {
		t.Fatalf("total rows %d (known %v), want %d", total, known, n)
	}
	var pages []bqjobsfake.ResultRead
	for _, rd := range jobs.ResultReads() {
		if rd.Rows > 0 {
			pages = append(pages, rd)
		}
	}
	return pages
}

// The REST reader asks jobs.getQueryResults for pages of
// DefaultRESTPageRows: without a row limit every page holds as many rows
// as a reply carries (10 MB of JSON from BigQuery, the whole result from
// the sandbox's emulator), decoded twice over in the client.
func TestRESTReadsPagesOfBoundedRows(t *testing.T) {
	t.Parallel()
	n := 2*DefaultRESTPageRows + 7
	pages := readREST(t, restJobs(t, n), n, 0)
	var rows []int
	for _, p := range pages {
		if p.MaxResults != DefaultRESTPageRows {
			t.Fatalf("getQueryResults asked for maxResults %d (-1: not set) and got %d rows in one page; want pages of at most %d rows (DefaultRESTPageRows); %d pages in all",
				p.MaxResults, p.Rows, DefaultRESTPageRows, len(pages))
		}
		rows = append(rows, p.Rows)
	}
	if want := fmt.Sprint([]int{DefaultRESTPageRows, DefaultRESTPageRows, 7}); fmt.Sprint(rows) != want {
		t.Fatalf("pages of %v rows, want %s", rows, want)
	}
}

// Config.RESTPageRows sets the page size; negative leaves it to BigQuery,
// as the bench's read-rest-unpaged does.
func TestRESTPageRowsSetting(t *testing.T) {
	t.Parallel()
	const n = 30
	for _, c := range []struct {
		page int
		max  int64
		rows string
	}{{10, 10, "[10 10 10]"}, {-1, -1, "[30]"}} {
		var rows []int
		for _, p := range readREST(t, restJobs(t, n), n, c.page) {
			if p.MaxResults != c.max {
				t.Fatalf("RESTPageRows %d: getQueryResults asked for maxResults %d, want %d", c.page, p.MaxResults, c.max)
			}
			rows = append(rows, p.Rows)
		}
		if fmt.Sprint(rows) != c.rows {
			t.Fatalf("RESTPageRows %d: pages of %v rows, want %s", c.page, rows, c.rows)
		}
	}
}

// TestRESTNextColumnsBatches: NextColumns hands over at most max rows per
// call whatever the page size, across page boundaries, column by column
// with NULLs marked, then 0 and io.EOF, and again io.EOF after that.
func TestRESTNextColumnsBatches(t *testing.T) {
	const n = 100 // user 97's order is NULL
	r := openRESTResult(t, restJobs(t, n), 10)
	vecs := make([]backfill.Vector, len(r.Columns()))
	var sizes []int
	next := int64(1)
	for {
		got, err := r.NextColumns(vecs, 7)
		if errors.Is(err, io.EOF) {
			if got != 0 {
				t.Fatalf("io.EOF with %d rows", got)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, got)
		for j, v := range vecs {
			if len(v.Int64) != got || len(v.Null) != got {
				t.Fatalf("column %d holds %d values and %d NULL marks for %d rows", j, len(v.Int64), len(v.Null), got)
			}
		}
		for i := range got {
			u := vecs[0].Int64[i]
			if u != next || vecs[0].Null[i] {
				t.Fatalf("row %d: user %d (NULL %v), want %d", next, u, vecs[0].Null[i], next)
			}
			if want := 1000 * u; vecs[1].Null[i] != (u%97 == 0) || !vecs[1].Null[i] && vecs[1].Int64[i] != want {
				t.Fatalf("user %d: order %d (NULL %v), want %d", u, vecs[1].Int64[i], vecs[1].Null[i], want)
			}
			next++
		}
	}
	want := make([]int, n/7, n/7+1)
	for i := range want {
		want[i] = 7
	}
	want = append(want, n%7)
	if fmt.Sprint(sizes) != fmt.Sprint(want) || next != n+1 {
		t.Fatalf("batches of %v rows up to user %d; want %v up to %d", sizes, next-1, want, n)
	}
	if got, err := r.NextColumns(vecs, 7); got != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %d rows, %v", got, err)
	}
}
