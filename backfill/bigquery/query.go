package bigquery

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// ShardColumn is the column the shared query of a sharded run adds: the
// shard each row belongs to. Each shard reads its rows through the read
// session's row restriction "_backfill_shard = i".
const ShardColumn = "_backfill_shard"

// baseSQL is the query without sharding: Query reduced to one row per
// key (see KeyedSQL), or the minimum order id per user from Table.
func (c *Config) baseSQL() string {
	if c.Query != "" {
		if c.reduce != nil {
			return KeyedSQL(c.customSQL(), *c.reduce)
		}
		return c.customSQL()
	}
	return fmt.Sprintf("SELECT %s, MIN(%s) AS min_%s FROM `%s` GROUP BY %s",
		c.KeyColumn, c.OrderColumn, c.OrderColumn, strings.Replace(c.Table, ":", ".", 1), c.KeyColumn)
}

// customSQL is Query as given, less surrounding space and semicolons.
func (c *Config) customSQL() string {
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(c.Query), ";"))
}

// KeyedSQL reduces query to at most one row per key, whatever it returns:
// the key, its minimum of p.Min, and the other value fields' columns from
// a row holding that minimum. A key with no non-NULL p.Min keeps one row
// with NULLs, which the pipeline skips and counts; all NULL keys make one
// row. The query stands on lines of its own, so that a trailing "--"
// comment cannot swallow the closing parenthesis.
func KeyedSQL(query string, p backfill.Projection) string {
	cols := []string{quote(p.Key), fmt.Sprintf("MIN(%s) AS %s", quote(p.Min), quote(p.Min))}
	for _, c := range p.Carry {
		// ARRAY_AGG keeps no NULL element: the rows without a minimum give
		// a NULL struct, ignored; a struct keeps a NULL field.
		cols = append(cols, fmt.Sprintf("ARRAY_AGG(IF(%s IS NULL, NULL, STRUCT(%s AS v)) IGNORE NULLS ORDER BY %s LIMIT 1)[SAFE_OFFSET(0)].v AS %s",
			quote(p.Min), quote(c), quote(p.Min), quote(c)))
	}
	return fmt.Sprintf("SELECT %s FROM (\n%s\n) GROUP BY %s", strings.Join(cols, ", "), query, quote(p.Key))
}

// quote makes a column name an identifier.
func quote(name string) string { return "`" + name + "`" }

// shardExpr is a row's shard: |key mod count|, with NULL keys in shard 0,
// so that every row falls in exactly one shard.
func (c *Config) shardExpr() string {
	return fmt.Sprintf("IFNULL(ABS(MOD(`%s`, %d)), 0)", c.KeyColumn, c.ShardCount)
}

// sharded reports whether the run reads one shard of several.
func (c *Config) sharded() bool { return c.ShardCount > 1 }

// queryOnce reports whether the shards of the run share one query job:
// the Storage Read API can read one shard of a shared result, REST cannot.
func (c *Config) queryOnce() bool { return c.sharded() && c.ReadAPI != ReadREST }

// SQL returns the query the source runs:
//   - unsharded: the base query;
//   - sharded, read through the Storage Read API: the base query with the
//     ShardColumn added, run once for all shards;
//   - sharded, read over REST: the base query restricted to this shard,
//     run by each shard.
func (c *Config) SQL() string {
	switch {
	case !c.sharded():
		return c.baseSQL()
	case c.queryOnce():
		return fmt.Sprintf("SELECT *, %s AS %s FROM (\n%s\n)", c.shardExpr(), ShardColumn, c.baseSQL())
	}
	return fmt.Sprintf("SELECT * FROM (\n%s\n) WHERE %s = %d", c.baseSQL(), c.shardExpr(), c.ShardIndex)
}

// rowRestriction selects this shard's rows of the shared result.
func (c *Config) rowRestriction() string {
	if !c.queryOnce() {
		return ""
	}
	return fmt.Sprintf("%s = %d", ShardColumn, c.ShardIndex)
}

var jobIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// jobID returns the BigQuery job id of the query, derived from QueryKey
// and from everything that shapes the result, so that the shards of one
// run (one Kubernetes Job) attach to one job, and a changed query never
// attaches to an old one. Empty without a QueryKey: the client picks one.
func (c *Config) jobID() string {
	if c.QueryKey == "" {
		return ""
	}
	h := sha256.New()
	for _, s := range []string{c.Project, c.Location, c.SQL(), c.DestinationTable} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	for _, p := range c.Params {
		fmt.Fprintf(h, "%s:%s=%s;", p.Name, p.Type, p.Value)
	}
	key := jobIDUnsafe.ReplaceAllString(c.QueryKey, "_")
	if len(key) > 200 {
		key = key[:200]
	}
	return "ordermin_backfill_" + key + "_" + hex.EncodeToString(h.Sum(nil))[:16]
}

// countSQL counts the rows of each shard of the shared result in dst,
// their distinct keys and their NULL keys: one job for all shards. It
// reads only the shard and key columns of the result, once; a window
// count in the shared query would instead gather each shard's rows on one
// worker.
func (c *Config) countSQL(dst string) string {
	return fmt.Sprintf("SELECT %s AS `shard`, COUNT(*) AS `n`, COUNT(DISTINCT `%s`) AS `keys`, COUNTIF(`%s` IS NULL) AS `null_keys` FROM `%s` GROUP BY %s",
		ShardColumn, c.KeyColumn, c.KeyColumn, dst, ShardColumn)
}

// ResultExpiration is how long a query job's result table is kept when
// bigquery.destination_table is set: long past any run.
const ResultExpiration = 24 * time.Hour

// newJobID returns a new random job id, for a query job that no other
// shard attaches to.
func newJobID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return "ordermin_backfill_" + hex.EncodeToString(b[:])
}

// resultTable names the result table of job id in destination_table's
// dataset: the setting's table name, then the job id, with the characters
// a table name may not hold replaced.
func resultTable(prefix, jobID string) string {
	name := prefix + "_" + tableUnsafe.ReplaceAllString(jobID, "_")
	if len(name) > 1024 {
		sum := sha256.Sum256([]byte(name))
		name = name[:1000] + "_" + hex.EncodeToString(sum[:])[:16]
	}
	return name
}

var tableUnsafe = regexp.MustCompile(`[^A-Za-z0-9_]+`)
