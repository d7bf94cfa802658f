package ksqldb

import (
	"context"
	"log/slog"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// markerCheck remembers which partitions' lag is transaction markers only.
type markerCheck struct {
	only  func(ctx context.Context, partition int32, from, to int64) (bool, error)
	log   *slog.Logger
	stage string
	seen  map[backfill.PartitionLag]bool
}

func newMarkerCheck(only func(context.Context, int32, int64, int64) (bool, error), log *slog.Logger, stage string) *markerCheck {
	return &markerCheck{only: only, log: log, stage: stage, seen: map[backfill.PartitionLag]bool{}}
}

// drop returns the lag without the partitions behind by transaction
// markers only. A partition the check fails on stays behind.
func (m *markerCheck) drop(ctx context.Context, parts []backfill.PartitionLag) (int64, []backfill.PartitionLag) {
	var total int64
	var out []backfill.PartitionLag
	for _, p := range parts {
		only, known := m.seen[p]
		if !known && m.only != nil {
			var err error
			if only, err = m.only(ctx, p.Partition, p.Committed, p.Target); err != nil {
				m.log.Warn("could not tell whether the table query's lag is transaction markers only; still waiting",
					"stage", m.stage, "partition", p.Partition, "committed", p.Committed, "target", p.Target, "error", err.Error())
				only = false
			} else {
				m.seen[p] = only
			}
			if only {
				m.log.Info("the table query's lag on this partition is transaction markers only: caught up",
					"stage", m.stage, "partition", p.Partition, "committed", p.Committed, "target", p.Target)
			}
		}
		if !only {
			total += p.Lag
			out = append(out, p)
		}
	}
	return total, out
}
