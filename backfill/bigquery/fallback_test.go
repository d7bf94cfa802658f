package bigquery

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

// restRows answers a query over REST as BigQuery would: users 1..users
// (user u: order 1000*u), only shard i's when the query selects shard i
// of shards, else all of them, with the shard column when the query adds
// it.
func restRows(users, shards int) func(sql string) (*bq.TableSchema, []*bq.TableRow, bool) {
	return func(sql string) (*bq.TableSchema, []*bq.TableRow, bool) {
		if strings.HasPrefix(sql, "SELECT COUNT(*)") {
			return nil, nil, false
		}
		fields := []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "min_order_id", Type: "INTEGER"}}
		withShard := strings.Contains(sql, " AS "+ShardColumn+" ")
		if withShard {
			fields = append(fields, &bq.TableFieldSchema{Name: ShardColumn, Type: "INTEGER"})
		}
		only := -1
		filter := "WHERE IFNULL(ABS(MOD(`user_id`, " + strconv.Itoa(shards) + ")), 0) = "
		if _, after, ok := strings.Cut(sql, filter); ok {
			only, _ = strconv.Atoi(strings.TrimSpace(after))
		}
		var rows []*bq.TableRow
		for u := 1; u <= users; u++ {
			if only >= 0 && u%shards != only {
				continue
			}
			cells := []*bq.TableCell{{V: strconv.Itoa(u)}, {V: strconv.Itoa(1000 * u)}}
			if withShard {
				cells = append(cells, &bq.TableCell{V: strconv.Itoa(u % shards)})
			}
			rows = append(rows, &bq.TableRow{F: cells})
		}
		return &bq.TableSchema{Fields: fields}, rows, true
	}
}

// A sharded run on read_api=auto whose Storage Read API
// is unavailable read the shared query's whole result over REST: one
// shard wrote every user. The fallback must read this shard's rows only.
func TestShardedRESTFallbackReadsItsShardOnly(t *testing.T) {
	t.Parallel()
	const users, shards = 100, 2
	read, jobs, shard := shardedRun(t, users, shards)
	read.SetFaults(bqreadfake.Faults{CreateErr: status.Error(codes.Unavailable, "storage endpoint unreachable")})
	count := jobs.Answer
	rest := restRows(users, shards)
	jobs.Answer = func(sql string) (*bq.TableSchema, []*bq.TableRow, bool) {
		if s, r, ok := count(sql); ok {
			return s, r, ok
		}
		return rest(sql)
	}
	s := shard(1)
	s.cfg.ReadAPI, s.cfg.ReadSessionTimeout = ReadAuto, 300*time.Millisecond
	r, err := s.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Path() != PathREST {
		t.Fatalf("path %s, want the REST fallback", r.Path())
	}
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	for u := range got {
		if u%shards != 1 {
			t.Fatalf("shard 1 of %d read user %d (shard %d) through the REST fallback: %d users in all", shards, u, u%shards, len(got))
		}
	}
	if total, known := r.TotalRows(); len(got) != users/shards || !known || total != users/shards {
		t.Fatalf("shard 1 read %d users, expected %d (known %v); want %d", len(got), total, known, users/shards)
	}
}
