package bigquery

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqjobsfake"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

func TestSQLShapes(t *testing.T) {
	t.Parallel()
	base := Config{Table: "p:d.orders", OrderColumn: "order_id", KeyColumn: "user_id", ShardCount: 1}
	if got, want := base.SQL(), "SELECT user_id, MIN(order_id) AS min_order_id FROM `p.d.orders` GROUP BY user_id"; got != want {
		t.Errorf("default query = %q, want %q", got, want)
	}
	custom := base
	custom.Query = " SELECT a FROM t; "
	if got := custom.SQL(); got != "SELECT a FROM t" {
		t.Errorf("custom query = %q", got)
	}
	rest := base
	rest.ShardIndex, rest.ShardCount, rest.ReadAPI = 3, 4, ReadREST
	if got := rest.SQL(); !strings.HasSuffix(got, "WHERE IFNULL(ABS(MOD(`user_id`, 4)), 0) = 3") || rest.rowRestriction() != "" {
		t.Errorf("sharded REST query = %q, restriction %q", got, rest.rowRestriction())
	}
	once := base
	once.ShardIndex, once.ShardCount, once.ReadAPI = 3, 4, ReadStorage
	if got := once.SQL(); !strings.HasPrefix(got, "SELECT *, IFNULL(ABS(MOD(`user_id`, 4)), 0) AS _backfill_shard FROM (") || strings.Contains(got, "WHERE") {
		t.Errorf("query-once SQL = %q", got)
	}
	if got := once.rowRestriction(); got != "_backfill_shard = 3" {
		t.Errorf("row restriction %q", got)
	}
}

func TestJobIDIsSharedByShardsAndChangesWithTheQuery(t *testing.T) {
	t.Parallel()
	shard := func(i int) Config {
		return Config{Project: "p", Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id", ShardIndex: i, ShardCount: 4, QueryKey: "0f6c1c9e-uid/x"}
	}
	a, b := shard(0), shard(3)
	if a.jobID() == "" || a.jobID() != b.jobID() {
		t.Fatalf("shards' job ids %q and %q differ", a.jobID(), b.jobID())
	}
	if !strings.HasPrefix(a.jobID(), "ordermin_backfill_0f6c1c9e-uid_x_") {
		t.Fatalf("job id %q", a.jobID())
	}
	other := shard(0)
	other.OrderColumn = "id"
	if other.jobID() == a.jobID() {
		t.Fatal("a different query attaches to the same job id")
	}
	if noKey := (Config{ShardCount: 1}); noKey.jobID() != "" {
		t.Fatalf("no query_key: job id %q, want the client's", noKey.jobID())
	}
}

// TestShardsOfOneRunShareOneQueryJob: two shards of one run open at once;
// one creates the query job, the other attaches to it on 409, and each
// reads its own rows of the shared result through the Storage Read API.
func TestShardsOfOneRunShareOneQueryJob(t *testing.T) {
	t.Parallel()
	const users, shards = 10_000, 2
	read, jobs, shard := shardedRun(t, users, shards)
	got := make([]map[int64]int64, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := shard(i).Open(context.Background())
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close()
			if cols := r.Columns(); len(cols) != 2 || cols[1].Name != "min_order_id" {
				t.Errorf("shard %d columns %v: the shard column must not be read", i, cols)
			}
			if total, known := r.TotalRows(); !known || total != users/shards {
				t.Errorf("shard %d expects %d rows (known %v), want %d", i, total, known, users/shards)
			}
			got[i], errs[i] = readAll(t, r)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	all := map[int64]int64{}
	for i, m := range got {
		for u, v := range m {
			if u%shards != int64(i) {
				t.Fatalf("shard %d read user %d", i, u)
			}
			all[u] = v
		}
	}
	checkOrders(t, all, usersUpTo(users))
	// Per shard: one session reading its rows, restricted to the shard,
	// without the shard column; one query job counting every shard's.
	sessions := map[string]int{}
	for _, c := range read.CreateRequests() {
		o := c.GetReadSession().GetReadOptions()
		sessions[strings.Join(o.GetSelectedFields(), ",")]++
		if !strings.HasPrefix(o.GetRowRestriction(), ShardColumn+" = ") {
			t.Fatalf("row restriction %q", o.GetRowRestriction())
		}
	}
	if sessions["user_id,min_order_id"] != shards || len(sessions) != 1 {
		t.Fatalf("read sessions by selected fields: %v", sessions)
	}
	if n := jobs.Created(); n != 2 {
		t.Fatalf("%d query jobs, want the shared query and the shared count", n)
	}
}

// shardedRun serves a query-once result of users rows in shards shards
// from the doubles and returns a source for each shard of one run.
func shardedRun(t *testing.T, users, shards int) (*bqreadfake.Server, *bqjobsfake.Server, func(i int) *Source) {
	t.Helper()
	return shardedRunCopies(t, users, shards, 1)
}

// shardedRunCopies is shardedRun whose count query answers as if the
// result table held every row copies times.
func shardedRunCopies(t *testing.T, users, shards, copies int) (*bqreadfake.Server, *bqjobsfake.Server, func(i int) *Source) {
	t.Helper()
	read, err := bqreadfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	rec := ordersRecordWith(users, int64(shards), ShardColumn)
	read.AddTable("projects/p/datasets/d/tables/anon_result", rec)
	rec.Release()
	schema := &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "min_order_id", Type: "INTEGER"},
		{Name: ShardColumn, Type: "INTEGER"}}}
	jobs := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon_result"}, uint64(users), schema)
	// The count of each shard's rows, as BigQuery would answer it: users
	// u = 1..users fall in shard u % shards.
	jobs.Answer = func(sql string) (*bq.TableSchema, []*bq.TableRow, bool) {
		const grouped = "SELECT " + ShardColumn + " AS `shard`, COUNT(*) AS `n`, COUNT(DISTINCT `user_id`) AS `keys`, COUNTIF(`user_id` IS NULL) AS `null_keys` FROM `p.d.anon_result` GROUP BY " + ShardColumn
		if sql == grouped {
			n := make([]int, shards)
			for u := 1; u <= users; u++ {
				n[u%shards]++
			}
			var rows []*bq.TableRow
			for i, c := range n {
				rows = append(rows, &bq.TableRow{F: []*bq.TableCell{{V: strconv.Itoa(i)}, {V: strconv.Itoa(c * copies)}, {V: strconv.Itoa(c)}, {V: "0"}}})
			}
			return &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "shard", Type: "INTEGER"}, {Name: "n", Type: "INTEGER"}, {Name: "keys", Type: "INTEGER"}, {Name: "null_keys", Type: "INTEGER"}}},
				rows, true
		}
		return nil, nil, false
	}
	return read, jobs, func(i int) *Source {
		return New(Config{Project: "p", Endpoint: jobs.URL(), StorageEndpoint: read.Addr(), StoragePlaintext: true,
			Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id", ShardIndex: i, ShardCount: shards,
			QueryKey: "job-uid", ReadAPI: ReadStorage, ReadStreams: 2, ReadSessionTimeout: 5 * time.Second, QueryTimeout: 30 * time.Second}, nil)
	}
}

// TestAShortShardIsSeen: a shard knows how many rows it must read, so a
// stream that ends early leaves it short of TotalRows, which Pipeline.Run
// fails with exit 4.
func TestAShortShardIsSeen(t *testing.T) {
	t.Parallel()
	const users, shards = 10_000, 2
	read, _, shard := shardedRun(t, users, shards)
	read.SetFaults(bqreadfake.Faults{Truncate: 100})
	r, err := shard(1).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if total, known := r.TotalRows(); !known || total != users/shards || uint64(len(got)) != total-100 {
		t.Fatalf("read %d rows of %d (known %v), want 100 short of %d", len(got), total, known, users/shards)
	}
}

func TestAutoFallsBackToRESTAndSaysWhy(t *testing.T) {
	t.Parallel()
	// A Storage Read API that refuses the session; the REST double then
	// serves the rows: here, none, as an empty result.
	read, err := bqreadfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	dst := &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}
	url := startJobs(t, dst, 0, &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}}}).URL()
	cfg := Config{Project: "p", Endpoint: url, StorageEndpoint: read.Addr(), StoragePlaintext: true,
		Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id", ShardCount: 1,
		ReadStreams: 1, ReadSessionTimeout: 5 * time.Second, QueryTimeout: 30 * time.Second}

	cfg.ReadAPI = ReadStorage
	if _, err := New(cfg, nil).Open(context.Background()); backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "Not found") {
		t.Fatalf("read_api=storage over a missing table: %v (kind %s), want the Storage Read API's failure", err, backfill.KindOf(err))
	}
	cfg.ReadAPI = ReadAuto
	r, err := New(cfg, nil).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, ok := r.(backfill.FallbackReader)
	if !ok || r.Path() != PathREST || !strings.Contains(f.Fallback(), "Storage Read API") {
		t.Fatalf("path %s, fallback %v", r.Path(), r)
	}
}
