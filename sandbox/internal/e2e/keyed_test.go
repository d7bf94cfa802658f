package e2e

import (
	"context"
	"testing"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/ordermin/ordermin-backfill/backfill"
	bqsource "github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// TestKeyedQueryCarriesTheMinimumsRow runs the wrapper the job puts
// around a custom query whose value schema has a field besides the order
// id: that field comes from the row holding the minimum, NULL orders
// never win, and a user with no order keeps one row of NULLs.
func TestKeyedQueryCarriesTheMinimumsRow(t *testing.T) {
	s := startStack(t, stack.Options{Users: 10})
	ctx := context.Background()
	client, err := bigquery.NewClient(ctx, stack.Project, option.WithEndpoint(s.BigQueryURL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	custom := "SELECT 1 AS user_id, 5 AS min_order_id, 'a' AS note" +
		" UNION ALL SELECT 1, NULL, 'n' UNION ALL SELECT 1, 3, 'b' UNION ALL SELECT 1, 4, 'c'" +
		" UNION ALL SELECT 2, NULL, 'x' -- users 1 and 2"
	sql := bqsource.KeyedSQL(custom, backfill.Projection{Key: "user_id", Min: "min_order_id", Carry: []string{"note"}})
	it, err := client.Query(sql).Read(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	got := map[int64][2]bigquery.Value{}
	for {
		var row []bigquery.Value
		if err := it.Next(&row); err == iterator.Done {
			break
		} else if err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
		got[row[0].(int64)] = [2]bigquery.Value{row[1], row[2]}
	}
	if len(got) != 2 || got[1] != [2]bigquery.Value{int64(3), "b"} || got[2] != [2]bigquery.Value{nil, nil} {
		t.Fatalf("rows %v, want user 1: 3 b, user 2: NULL NULL\n%s", got, sql)
	}
}
