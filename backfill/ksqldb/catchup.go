package ksqldb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// CatchUpOptions tune CatchUp.
type CatchUpOptions struct {
	Stage string        // what the wait is for, in logs and the report, e.g. "before verification"
	Poll  time.Duration // how often the offsets are read; default 1s
	// Stall is how long the lag may go without shrinking before CatchUp
	// gives up; default 5m.
	Stall         time.Duration
	ProgressEvery time.Duration // how often the lag is logged; 0 never
	Log           *slog.Logger
	// OnlyMarkers, when set, reports whether the stream's topic holds on
	// partition, from offset from up to to, only transaction markers
	// (kafka.Producer.OnlyMarkers). An end offset counts markers, and
	// Kafka Streams before 3.1 (ksqlDB <= 0.22, CP <= 7.0) does not commit
	// past a trailing one until the next record, so a partition behind by
	// markers only is caught up. It is asked when the lag did not shrink
	// since the previous poll, once per partition and committed offset.
	OnlyMarkers func(ctx context.Context, partition int32, from, to int64) (bool, error)
}

// CatchUp waits until the persistent query writing the table has
// committed, on every partition p of target, an offset of at least
// target[p]: then every record below target[p] is in the table. It follows
// ksqlDB's progress, not the clock: it fails only when the lag has not
// shrunk for opts.Stall, with a KindVerify error naming the query and its
// lag per partition, or KindUnavailable when ksqlDB could not be reached
// for that long. Contract errors (no query writes the table) return at
// once.
func (c *Client) CatchUp(ctx context.Context, facts Facts, target map[int32]int64, opts CatchUpOptions) (backfill.CatchUp, error) {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Stall <= 0 {
		opts.Stall = 5 * time.Minute
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	res := backfill.CatchUp{Stage: opts.Stage, Table: facts.Table}
	finish := func(status string, err error) (backfill.CatchUp, error) {
		res.Status, res.Seconds = status, time.Since(start).Seconds()
		return res, err
	}
	best, bestAt := int64(-1), start
	lastLog, lastLogLag := start, int64(-1)
	var lastErr error
	uncommitted := false // the query's group lists no offset on the topic at all
	markers := newMarkerCheck(opts.OnlyMarkers, log, opts.Stage)
	prevLag := int64(-1)
	for {
		qp, err := c.Progress(ctx, facts)
		now := time.Now()
		switch {
		case err == nil:
			lastErr, uncommitted = nil, len(qp.Committed) == 0
			res.Group = qp.Group
			res.Lag, res.Partitions = lagOf(target, qp.Committed)
			if res.Lag > 0 && res.Lag == prevLag {
				res.Lag, res.Partitions = markers.drop(ctx, res.Partitions)
			}
			prevLag = res.Lag
			if res.Lag == 0 {
				log.Info("ksqlDB has caught up", "stage", opts.Stage, "table", facts.Table, "query_group", qp.Group, "seconds", now.Sub(start).Seconds())
				return finish("caught_up", nil)
			}
			if best < 0 || res.Lag < best {
				best, bestAt = res.Lag, now
			}
			if opts.ProgressEvery > 0 && (lastLogLag < 0 || now.Sub(lastLog) >= opts.ProgressEvery) {
				attrs := []any{"stage", opts.Stage, "table", facts.Table, "lag_records", res.Lag, "partitions_behind", len(res.Partitions)}
				if lastLogLag >= 0 {
					rate := float64(lastLogLag-res.Lag) / now.Sub(lastLog).Seconds()
					attrs = append(attrs, "records_per_second", int64(rate))
					if rate > 0 {
						attrs = append(attrs, "eta_seconds", int64(float64(res.Lag)/rate))
					}
				}
				log.Info("waiting for ksqlDB to aggregate", attrs...)
				lastLog, lastLogLag = now, res.Lag
			}
		case ctx.Err() != nil:
			return finish("interrupted", err)
		case backfill.KindOf(err) == backfill.KindUnavailable:
			lastErr = err
			log.Warn("reading ksqlDB's progress failed; still waiting", "stage", opts.Stage, "error", err.Error())
		default:
			return finish("failed", err)
		}
		if stalled := now.Sub(bestAt); stalled >= opts.Stall {
			if lastErr != nil {
				return finish("unreachable", backfill.Errorf(backfill.KindUnavailable,
					"ksqlDB could not be read for %s while waiting %s for table %s: %w", stalled.Round(time.Second), opts.Stage, QuoteIdentifier(facts.Table), lastErr))
			}
			hint := ""
			if uncommitted {
				hint = fmt.Sprintf("; the group has committed no offset on the topic at all: either the query has not read it (auto.offset.reset=latest skips what was written before the query started) "+
					"or the server runs shared runtimes (%s=true), whose queries commit under the runtime's group, never under this one", settingSharedRuntime)
			}
			return finish("stalled", backfill.Errorf(backfill.KindVerify,
				"ksqlDB's query %s (consumer group %s), which feeds table %s from topic %q, made no progress for %s while the job waited %s: %d records behind (%s)%s; "+
					"check the query's state (SHOW QUERIES; EXPLAIN %s;) and the ksqlDB server's logs, or raise ksqldb.stall_timeout if ksqlDB is only slow",
				orString(facts.QueryID, "?"), orString(res.Group, "?"), QuoteIdentifier(facts.Table), facts.Topic, stalled.Round(time.Second), opts.Stage,
				res.Lag, describeLag(res.Partitions, 10), hint, orString(facts.QueryID, "<query id>")))
		}
		if httpc.Sleep(ctx, opts.Poll) != nil {
			return finish("interrupted", ctxErr(ctx, "waiting for ksqlDB to catch up "+opts.Stage))
		}
	}
}

// lagOf returns how many offsets the committed positions are behind
// target, in all and for each partition behind.
func lagOf(target, committed map[int32]int64) (int64, []backfill.PartitionLag) {
	var total int64
	var parts []backfill.PartitionLag
	for p, t := range target {
		if c := committed[p]; c < t {
			total += t - c
			parts = append(parts, backfill.PartitionLag{Partition: p, Target: t, Committed: c, Lag: t - c})
		}
	}
	slices.SortFunc(parts, func(a, b backfill.PartitionLag) int { return int(a.Partition - b.Partition) })
	return total, parts
}

func describeLag(parts []backfill.PartitionLag, most int) string {
	var b strings.Builder
	for i, p := range parts {
		if i == most {
			fmt.Fprintf(&b, ", and %d more partitions", len(parts)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "partition %d committed %d of %d", p.Partition, p.Committed, p.Target)
	}
	return b.String()
}
