package ksqldb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	BatchKeys int // keys per pull query (WHERE key IN (…)); default 100
	// Recheck is the pause before the one second pass over keys that were
	// missing or larger in the first: committed offsets say the table has
	// the records, and one more look covers a pull query served just
	// before the store caught up with the commit; default 2s.
	Recheck     time.Duration
	MaxExamples int // examples kept per finding; default 10
	// UseQueryStream sends pull queries to /query-stream when the server
	// answers it over HTTP/1.1 (0.24+); otherwise /query is used.
	UseQueryStream bool
	Parallel       int // pull queries in flight; default 4
}

func (o VerifyOptions) withDefaults() VerifyOptions {
	if o.BatchKeys <= 0 {
		o.BatchKeys = 100
	}
	if o.Recheck <= 0 {
		o.Recheck = 2 * time.Second
	}
	if o.MaxExamples <= 0 {
		o.MaxExamples = 10
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	return o
}

// failure is a key whose check failed in the last pass.
type failure struct {
	kv    backfill.KeyValue
	found bool
	table cell
}

// verifyRun accumulates one verification's findings across passes.
type verifyRun struct {
	f       *Facts
	opts    VerifyOptions
	stream  atomic.Bool
	matched atomic.Int64

	mu       sync.Mutex
	smaller  int64
	smallEx  []string
	failures []failure
}

// Verify proves with pull queries that the table holds what rec saw sent:
// a key verifies when the table's MIN is at most the value sent (equal in
// the usual case; smaller means CDC saw an order the source lacks, which is
// reported as a warning). Call it once CatchUp has seen the table's query
// commit past every record sent: keys missing or larger are then queried
// once more after Recheck, and those still failing make Verify return a
// KindVerify error with examples. facts come from Preflight.
func (c *Client) Verify(ctx context.Context, facts Facts, rec *Recorder, opts VerifyOptions) (backfill.Verification, error) {
	start := time.Now()
	opts = opts.withDefaults()
	v := backfill.Verification{Mode: string(rec.Mode()), Table: facts.Table, Observed: rec.Observed()}
	if rec.Mode() == ModeNone {
		return v, backfill.Errorf(backfill.KindInternal, "Verify called with verification off (ksqldb.verify=none): a bug in the caller")
	}
	if facts.Table == "" || facts.TableKeyColumn == "" || facts.TableValueColumn == "" {
		return v, backfill.Errorf(backfill.KindInternal, "verification needs the table's key and value columns from a successful preflight")
	}
	keys := rec.Keys()
	v.Checked = int64(len(keys))
	dups := rec.Duplicates()
	v.DuplicateKeys, v.DuplicateRecords = dups.Keys, dups.Records
	p := &verifyRun{f: &facts, opts: opts}
	p.stream.Store(opts.UseQueryStream && supportsQueryStream(facts.ServerVersion) && !facts.StandbyReads)

	todo := keys
	var (
		pending []failure
		err     error
	)
	for pass := 0; pass < 2 && len(todo) > 0; pass++ {
		if pass > 0 {
			if httpc.Sleep(ctx, opts.Recheck) != nil {
				err = ctxErr(ctx, "verifying the ksqlDB table")
				pending = nil
				break
			}
		}
		v.Rounds++
		if pending, err = c.checkPass(ctx, p, todo); err != nil {
			pending = nil
			break
		}
		todo = make([]backfill.KeyValue, len(pending)) // the keys still failing: none ends the loop
		for i, fl := range pending {
			todo[i] = fl.kv
		}
	}
	v.Endpoint = "/query"
	if p.stream.Load() {
		v.Endpoint = "/query-stream"
	}
	v.Matched, v.TableSmaller = p.matched.Load(), p.smaller
	valueCol := orString(facts.StreamValueColumn, "value")
	if p.smaller > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d of %d checked keys have a smaller %s in %s than the backfill sent: CDC saw orders the source lacks (examples: %s)",
			p.smaller, v.Checked, facts.TableValueColumn, QuoteIdentifier(facts.Table), strings.Join(p.smallEx, "; ")))
	}
	for _, fl := range pending {
		if fl.found && !fl.table.null {
			v.Larger++
		} else {
			v.Missing++
		}
		if len(v.Examples) < opts.MaxExamples {
			table := "missing"
			switch {
			case fl.found && fl.table.null:
				table = "NULL"
			case fl.found:
				table = fmt.Sprint(fl.table.value)
			}
			v.Examples = append(v.Examples, fmt.Sprintf("%s=%d: sent %s=%d, table %s=%s", facts.TableKeyColumn, fl.kv.Key, valueCol, fl.kv.Value, facts.TableValueColumn, table))
		}
	}
	v.Seconds = time.Since(start).Seconds()
	switch {
	case dups.Keys > 0:
		v.Status = "failed"
		for _, k := range dups.First {
			if len(v.Examples) >= opts.MaxExamples {
				break
			}
			v.Examples = append(v.Examples, fmt.Sprintf("%s=%d: sent more than once", facts.TableKeyColumn, k))
		}
		return v, duplicatesError(dups, v, facts, err)
	case backfill.KindOf(err) == backfill.KindInterrupted:
		v.Status = "interrupted"
		return v, err
	case err != nil:
		v.Status = "failed"
		return v, err
	case len(pending) > 0:
		v.Status = "failed"
		return v, backfill.Errorf(backfill.KindVerify,
			"ksqlDB table %s does not hold what was sent, although its query has committed past every record the job wrote: %d of %d checked keys are missing and %d have a larger %s (examples: %s); "+
				"likely causes: records written with schema ids ksqlDB cannot resolve (it drops them silently), records on a partition other than murmur2 of the serialized key (partitioner=murmur2_random), "+
				"or the table's query started after the records were written (auto.offset.reset=latest)",
			QuoteIdentifier(facts.Table), v.Missing, v.Checked, v.Larger, facts.TableValueColumn, strings.Join(v.Examples, "; "))
	}
	v.Status = "passed"
	return v, nil
}

// checkPass checks keys in batches, Parallel queries at a time, and returns
// the keys that are missing or larger.
func (c *Client) checkPass(ctx context.Context, p *verifyRun, keys []backfill.KeyValue) ([]failure, error) {
	p.failures = nil
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Parallel)
	for off := 0; off < len(keys); off += p.opts.BatchKeys {
		batch := keys[off:min(off+p.opts.BatchKeys, len(keys))]
		g.Go(func() error { return c.checkBatch(gctx, p, batch) })
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctxErr(ctx, "verifying the ksqlDB table")
		}
		return nil, err
	}
	return p.failures, nil
}

// checkBatch runs one pull query and sorts its keys into matched, smaller
// and failed.
func (c *Client) checkBatch(ctx context.Context, p *verifyRun, batch []backfill.KeyValue) error {
	ids := make([]int64, len(batch))
	for i, kv := range batch {
		ids[i] = kv.Key
	}
	stream := p.stream.Load()
	rows, err := c.pull(ctx, p.f, ids, stream)
	if err != nil && stream && notServed(err) {
		p.stream.Store(false) // an old server, or one reached over a proxy without /query-stream
		rows, err = c.pull(ctx, p.f, ids, false)
	}
	if err != nil {
		return err
	}
	var matched int64
	var failed []failure
	var smaller []backfill.KeyValue
	var smallerAt []int64
	for _, kv := range batch {
		got, ok := rows[kv.Key]
		switch {
		case ok && !got.null && got.value == kv.Value:
			matched++
		case ok && !got.null && got.value < kv.Value:
			smaller = append(smaller, kv)
			smallerAt = append(smallerAt, got.value)
		default:
			failed = append(failed, failure{kv: kv, found: ok, table: got})
		}
	}
	p.matched.Add(matched)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, failed...)
	p.smaller += int64(len(smaller))
	for i, kv := range smaller {
		if len(p.smallEx) >= p.opts.MaxExamples {
			break
		}
		p.smallEx = append(p.smallEx, fmt.Sprintf("%s=%d: sent %d, table %d", p.f.TableKeyColumn, kv.Key, kv.Value, smallerAt[i]))
	}
	return nil
}

// notServed reports whether the server does not offer /query-stream to
// this client: before 0.24 it answers HTTP/1.1 with 400 / 40004 "This
// endpoint is only available when using HTTP2" (ServerUtils.checkHttp2,
// v0.22.0-ksqldb); proxies answer 404, 405 or the like.
func notServed(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	if e.Code == 40004 {
		return true
	}
	switch e.Status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusHTTPVersionNotSupported, http.StatusUpgradeRequired:
		return true
	}
	return false
}

// duplicatesError says that the run sent some keys more than once, which
// the table's MIN hides but stream_min_order announces again; verr is
// the pull queries' own failure, if any.
func duplicatesError(d Duplicates, v backfill.Verification, facts Facts, verr error) error {
	scope := fmt.Sprintf("%d records were sent for %d distinct keys", v.Observed, v.Checked)
	if d.Sample {
		scope = fmt.Sprintf("of %d keys sampled from %d records sent", v.Checked, v.Observed)
	}
	also := ""
	if verr != nil {
		also = "; the pull queries also failed: " + verr.Error()
	}
	return backfill.Errorf(backfill.KindContract,
		"the run sent keys more than once: %s, %d keys were carried by more than one record (%d extra records; keys: %s): "+
			"every extra record makes a first-order announcement (stream_min_order) again for its user, although %s keeps the MIN; "+
			"the source must yield one row per key: check bigquery.query, and that no other run or shard wrote the same result table%s",
		scope, d.Keys, d.Records, joinKeys(d.First), QuoteIdentifier(facts.Table), also)
}

func joinKeys(keys []int64) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = fmt.Sprint(k)
	}
	return strings.Join(s, ", ")
}
