package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	bqclient "cloud.google.com/go/bigquery"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/internal/cli"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqjobsfake"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
)

// BigQuery names the bench's doubles serve: the query's result table.
const (
	bqProject = "bench"
	bqDataset = "bench"
	bqResult  = "result"
	bqTable   = "bench.bench.orders" // named in the query; the jobs double runs no SQL
)

// bigQueryDoubles serve a query's result of rows rows, (user_id,
// min_order_id) as backfilltest.DefaultRow makes them, through the
// BigQuery REST double (the query job, the table's metadata) and the
// Storage Read API double (the rows, BigQuery's Arrow framing).
type bigQueryDoubles struct {
	rows int64
	jobs *bqjobsfake.Server
	read *bqreadfake.Server
}

func startBigQuery(rows int64) (*bigQueryDoubles, error) {
	read, err := bqreadfake.Start()
	if err != nil {
		return nil, err
	}
	rec := resultRecord(rows)
	read.AddTable(fmt.Sprintf("projects/%s/datasets/%s/tables/%s", bqProject, bqDataset, bqResult), rec)
	rec.Release()
	jobs, err := bqjobsfake.Start(&bq.TableReference{ProjectId: bqProject, DatasetId: bqDataset, TableId: bqResult}, uint64(rows),
		&bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "min_order_id", Type: "INTEGER"}}})
	if err != nil {
		read.Close()
		return nil, err
	}
	jobs.Row = resultRow
	return &bigQueryDoubles{rows: rows, jobs: jobs, read: read}, nil
}

func (d *bigQueryDoubles) close() {
	d.jobs.Close()
	d.read.Close()
}

func (d *bigQueryDoubles) endpoints() BigQueryEndpoints {
	return BigQueryEndpoints{REST: d.jobs.URL(), Storage: d.read.Addr()}
}

// resultRecord is the query's result: row i is user i+1 with order
// 1000*(i+1), the rows the in-memory source of the job scenario makes.
func resultRecord(rows int64) arrow.Record {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "min_order_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	users, orders := b.Field(0).(*array.Int64Builder), b.Field(1).(*array.Int64Builder)
	users.Reserve(int(rows))
	orders.Reserve(int(rows))
	for i := range rows {
		users.Append(i + 1)
		orders.Append(1000 * (i + 1))
	}
	return b.NewRecord()
}

// resultRow is row i of resultRecord as jobs.getQueryResults returns it
// (INT64 values as JSON strings), made when asked for.
func resultRow(i uint64) *bq.TableRow {
	return &bq.TableRow{F: []*bq.TableCell{{V: strconv.FormatUint(i+1, 10)}, {V: strconv.FormatUint(1000*(i+1), 10)}}}
}

// BigQueryEndpoints are the doubles' addresses, passed to a child.
type BigQueryEndpoints struct {
	REST    string // bqjobsfake, as bigquery.endpoint
	Storage string // bqreadfake, as bigquery.storage_endpoint (plaintext)
}

// bigQuerySource is the job's BigQuery source as internal/cli builds it
// with the defaults of config.Default(), pointed at the doubles.
func bigQuerySource(e BigQueryEndpoints, t Tuning) *bigquery.Source {
	c := t.apply()
	c.BigQuery.Project, c.BigQuery.Table = bqProject, bqTable
	c.BigQuery.Endpoint, c.BigQuery.StorageEndpoint, c.BigQuery.StoragePlaintext = e.REST, e.Storage, true
	return bigquery.New(cli.BigQueryConfig(c), warnLogger())
}

// readRESTRun reads the result through the job's REST reader
// (read_api=rest), column by column as the pipeline does, pages of pageRows
// rows (0: bigquery.DefaultRESTPageRows; negative: no row limit), and
// drops the rows: the read stage alone.
func readRESTRun(rows int64, e BigQueryEndpoints, t Tuning, pageRows int) timed {
	return func(ctx context.Context) (int64, error) {
		c := t.apply()
		c.BigQuery.Project, c.BigQuery.Table, c.BigQuery.Endpoint = bqProject, bqTable, e.REST
		cfg := cli.BigQueryConfig(c)
		cfg.ReadAPI, cfg.RESTPageRows = bigquery.ReadREST, pageRows
		r, err := bigquery.New(cfg, warnLogger()).Open(ctx)
		if err != nil {
			return 0, err
		}
		defer r.Close()
		if r.Path() != bigquery.PathREST {
			return 0, fmt.Errorf("the source reads through %s, not REST", r.Path())
		}
		vecs := make([]backfill.Vector, len(r.Columns()))
		batch := c.Pipeline.BatchSize
		var n int64
		for {
			k, err := r.NextColumns(vecs, batch)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return n, err
			}
		}
		return n, checkRows(n, rows)
	}
}

// readStorageRun reads the result through the job's direct reader, column
// by column as the pipeline does, and drops the rows: the read stage alone.
func readStorageRun(rows int64, e BigQueryEndpoints, t Tuning) timed {
	return func(ctx context.Context) (int64, error) {
		r, err := bigQuerySource(e, t).Open(ctx)
		if err != nil {
			return 0, err
		}
		defer r.Close()
		if r.Path() != bigquery.PathStorage {
			return 0, fmt.Errorf("the source reads through %s, not the Storage Read API's columns", r.Path())
		}
		vecs := make([]backfill.Vector, len(r.Columns()))
		batch := t.apply().Pipeline.BatchSize
		var n int64
		for {
			k, err := r.NextColumns(vecs, batch)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return n, err
			}
		}
		return n, checkRows(n, rows)
	}
}

// readIteratorRun reads the same result through the client library's
// RowIterator over the Storage Read API (job.Read after
// EnableStorageReadClient), as the job once did: the read stage alone.
func readIteratorRun(rows int64, e BigQueryEndpoints, t Tuning) timed {
	return func(ctx context.Context) (int64, error) {
		client, err := bqclient.NewClient(ctx, bqProject, option.WithEndpoint(e.REST), option.WithoutAuthentication())
		if err != nil {
			return 0, err
		}
		defer client.Close()
		conn, err := grpc.NewClient(e.Storage, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		if err := client.EnableStorageReadClient(ctx, option.WithGRPCConn(conn), option.WithoutAuthentication()); err != nil {
			return 0, err
		}
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		job, err := client.Query("SELECT user_id, MIN(order_id) AS min_order_id FROM `" + bqTable + "` GROUP BY user_id").Run(qctx)
		if err != nil {
			return 0, err
		}
		it, err := job.Read(ctx)
		if err != nil {
			return 0, err
		}
		var n int64
		var row []bqclient.Value
		for {
			err := it.Next(&row)
			if err == iterator.Done {
				break
			}
			if err != nil {
				return n, err
			}
			n++
		}
		if !it.IsAccelerated() {
			return n, errors.New("the client read over REST, not the Storage Read API")
		}
		return n, checkRows(n, rows)
	}
}

func checkRows(n, rows int64) error {
	if n != rows {
		return fmt.Errorf("read %d of %d rows", n, rows)
	}
	return nil
}
