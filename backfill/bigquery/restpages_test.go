package bigquery

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

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

// readREST reads the whole result over REST with page rows per page (0:
// the default) and returns each getQueryResults call that returned rows.
func readREST(t *testing.T, jobs *bqjobsfake.Server, n, page int) []bqjobsfake.ResultRead {
	t.Helper()
	r, err := New(Config{Project: "p", Endpoint: jobs.URL(), Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id",
		ShardCount: 1, ReadAPI: ReadREST, QueryTimeout: 30 * time.Second, RESTPageRows: page}, nil).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
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

// Issue 27 item 9: 1 M rows through read_api=rest peaked at 451 MB RSS in
// the sandbox while the Storage Read API path stays flat. The reader
// asked jobs.getQueryResults for no row limit, so every page held as many
// rows as a reply carries (10 MB of JSON from BigQuery, the whole result
// from the sandbox's emulator), decoded twice over in the client. It must
// ask for pages of DefaultRESTPageRows.
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
