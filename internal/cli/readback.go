package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
)

// readBack reads the offsets between the end offsets before the run and
// the highest acknowledged ones that the run did not acknowledge, and
// counts this run's records among them: batches the broker stored twice
// (librdkafka#4953). A duplicate leaves the table's MIN right, so the run
// still succeeds; what else it did depends on the pipeline
// (duplicateWarning), and the log says so, naming the keys.
func (j *job) readBack(ctx context.Context, producer topicProducer, before []backfill.Watermarks, facts ksqldb.Facts) *backfill.Duplicates {
	if !j.cfg.Kafka.RunHeader {
		return &backfill.Duplicates{Status: "skipped", Reason: "kafka.run_header is off: records cannot be told apart, duplicates are not counted"}
	}
	if ctx.Err() != nil {
		return &backfill.Duplicates{Status: "skipped", Reason: "the run was interrupted before the duplicate check; a rerun in auto mode resumes with what ksqlDB lacks"}
	}
	w := producer.Written()
	ends := endOffsets(before)
	gaps := map[int32][][2]int64{}
	for _, pw := range w.PartitionWrites() {
		gaps[pw.Partition] = w.Gaps(pw.Partition, ends[pw.Partition], pw.HighestOffset)
	}
	d, err := producer.ReadBack(ctx, gaps, j.rep.RunID, kafka.ReadBackLimits{})
	if err != nil {
		d.Error = err.Error()
		j.log.Warn("the duplicate check did not finish", "error", err.Error(), "records_read", d.Read)
	} else if d.Status == "partial" {
		j.log.Warn("the duplicate check could not read every unacknowledged offset", "reason", d.Reason, "records_read", d.Read)
	}
	if d.Records > 0 {
		var loud bool
		d.Warning, loud = duplicateWarning(d.Records, d.Keys, facts)
		if loud {
			j.log.Error("DUPLICATE RECORDS REACHED OTHER QUERIES: "+d.Warning, "keys", d.Keys, "queries", facts.StreamReaders)
		} else {
			j.log.Warn(d.Warning, "keys", d.Keys)
		}
	}
	j.log.Info("duplicate check", "offsets_unacknowledged", d.Unacknowledged, "duplicates", d.Records, "foreign_records", d.Foreign)
	return &d
}

// endOffsets returns each partition's end offset.
func endOffsets(ws []backfill.Watermarks) map[int32]int64 {
	out := make(map[int32]int64, len(ws))
	for _, w := range ws {
		out[w.Partition] = w.End
	}
	return out
}

// partitionWrites joins what the job wrote with each partition's end
// offset before it started.
func partitionWrites(before []backfill.Watermarks, w *backfill.Written) []backfill.PartitionWrite {
	ends := endOffsets(before)
	out := w.PartitionWrites()
	for i := range out {
		out[i].EndOffsetBefore = -1
		if e, ok := ends[out[i].Partition]; ok {
			out[i].EndOffsetBefore = e
		}
	}
	return out
}

// duplicateWarning says what n records stored twice did, for the pipeline
// preflight found, and whether it must be logged as an error. Another
// query reading the stream that is not a table aggregation (the join
// pipeline's stream_min_order) saw the records twice and may have
// announced those users twice. The counting pipeline's table counted them
// twice: its announcer (count = 1) does not announce them again, but the
// count exceeds their orders. A table aggregation's MIN is unchanged.
func duplicateWarning(n int64, keys []int64, facts ksqldb.Facts) (string, bool) {
	w := fmt.Sprintf("the broker stored %d of this run's records twice (librdkafka#4953; keys: %v)", n, keys)
	var announcing []string
	for _, q := range facts.StreamReaders {
		if !slices.Contains(facts.AggregatingReaders, q) {
			announcing = append(announcing, q)
		}
	}
	if len(announcing) > 0 {
		return w + fmt.Sprintf("; queries %s read stream %s, so they saw these users' records twice: a first-order announcement may have been sent twice for them",
			strings.Join(announcing, ", "), facts.Stream), true
	}
	if facts.CountColumn != "" {
		w += fmt.Sprintf("; table %s counted them twice in %s: an announcer of %s = 1 (stream_first_order) does not announce these users again, "+
			"but their %s now exceeds their number of orders", facts.Table, facts.CountColumn, facts.CountColumn, facts.CountColumn)
	} else {
		w += fmt.Sprintf("; table %s is unaffected", facts.Table)
	}
	if len(facts.AggregatingReaders) > 0 {
		w += fmt.Sprintf("; table queries %s read stream %s too: their MIN is unaffected (a COUNT among them is raised)",
			strings.Join(facts.AggregatingReaders, ", "), facts.Stream)
	}
	return w, false
}
