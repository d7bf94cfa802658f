package bigquery

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

// BenchmarkReadPath reads one table of (user_id, min_order_id, shard)
// rows from the Storage Read API double, to the last row, by the job's
// direct reader (row by row, boxed, and column by column, as the pipeline
// reads it) and by the client library's RowIterator over the same API,
// side by side. ns/row and allocs/row are the read stage's cost per
// row, gRPC and the double's serving in the same process included.
func BenchmarkReadPath(b *testing.B) {
	const rows = 200_000
	read, err := bqreadfake.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(read.Close)
	rec := ordersRecord(rows, 4)
	read.AddTable("projects/p/datasets/d/tables/result", rec)
	rec.Release()
	ctx := context.Background()

	b.Run("direct-columns", func(b *testing.B) {
		src := New(Config{Project: "p", StorageEndpoint: read.Addr(), StoragePlaintext: true, ReadStreams: 1, ReadSessionTimeout: 5 * time.Second}, nil)
		rc, closeRC, err := src.storageClient(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer closeRC()
		vecs := make([]backfill.Vector, 3)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			r, err := src.openSession(ctx, rc, "projects/p/datasets/d/tables/result", nil, "")
			if err != nil {
				b.Fatal(err)
			}
			total := 0
			for {
				n, err := r.NextColumns(vecs, 512)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				total += n
			}
			r.Close()
			if total != rows {
				b.Fatalf("read %d rows", total)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
	})

	b.Run("client-iterator", func(b *testing.B) {
		// The client reads a table's metadata over REST first; the jobs
		// double serves it.
		url := startJobs(b, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "result"}, rows,
			&bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "min_order_id", Type: "INTEGER"}, {Name: "shard", Type: "INTEGER"}}}).URL()
		client, err := bigquery.NewClient(ctx, "p", option.WithEndpoint(url), option.WithoutAuthentication())
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		conn, err := grpc.NewClient(read.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		if err := client.EnableStorageReadClient(ctx, option.WithGRPCConn(conn), option.WithoutAuthentication()); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			it := client.DatasetInProject("p", "d").Table("result").Read(ctx)
			var vals rowLoader
			n := 0
			for {
				err := it.Next(&vals)
				if err == iterator.Done {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if !it.IsAccelerated() || n != rows {
				b.Fatalf("read %d rows, through the Storage Read API: %v", n, it.IsAccelerated())
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
	})
}

// BenchmarkBatchCopy measures the copy NextColumns makes of each Arrow
// record batch into the pipeline's vectors (the "copy" case), beside
// handing the Arrow buffers over without copying ("alias": the least a
// zero-copy path could cost, which would also have to hold each record
// until every batch cut from it is encoded). Rows of (user_id,
// min_order_id, shard), every 97th order NULL, 512-row batches.
func BenchmarkBatchCopy(b *testing.B) {
	const rows, batch = 65_536, 512
	rec := ordersRecord(rows, 4)
	defer rec.Release()
	cols := make([]column, rec.NumCols())
	for j, a := range rec.Columns() {
		cols[j] = newColumn(a)
	}
	dst := make([]backfill.Vector, len(cols))
	run := func(b *testing.B, move func(c *column, v *backfill.Vector, i, n int)) {
		b.ReportAllocs()
		for range b.N {
			for i := 0; i < rows; i += batch {
				for j := range cols {
					move(&cols[j], &dst[j], i, batch)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
	}
	b.Run("copy", func(b *testing.B) {
		run(b, func(c *column, v *backfill.Vector, i, n int) {
			if err := c.copyRows(v, i, n); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("alias", func(b *testing.B) {
		// The values and nothing else: the NULLs would be read from
		// Arrow's validity bitmap.
		run(b, func(c *column, v *backfill.Vector, i, n int) { v.Int64 = c.ints[i : i+n] })
	})
}
