package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/config"
)

// job wires the outside systems into one run.
type job struct {
	cfg   config.Config
	log   *slog.Logger
	rep   *backfill.Report
	check bool     // preflight only
	open  adapters // the outside systems' constructors; zero: the real ones
	// progress, if set, gets the pipeline's counters while it runs (the
	// supervising parent's copy, in case this process dies unreported).
	progress func(backfill.Progress)
}

// run is one attempt: it fetches the schemas, opens the producer and
// ksqlDB as the settings need them, runs the preflight (and stops there
// for check), chooses the mode, runs the pipeline, counts duplicates and
// verifies, filling j.rep. The producer is closed last, on every path.
func (j *job) run(ctx context.Context) error {
	c := j.cfg
	j.rep.Topic = c.Kafka.Topic
	j.rep.ShardIndex, j.rep.ShardCount = c.Shard.Index, c.Shard.Count
	j.rep.RunID = c.RunID
	if j.rep.RunID == "" {
		j.rep.RunID = newRunID()
	}
	if j.check {
		// Which Google credentials a run would use, reported even when a
		// check of another system fails first.
		gc := bigquery.DescribeCredentials(BigQueryConfig(c))
		j.rep.GoogleCredentials = &gc
	}

	codec, err := j.schemas(ctx)
	if err != nil {
		return err
	}
	// The producer's handle also reads the topic's offsets, which auto and
	// delta modes need even in a dry run.
	var producer topicProducer
	if !c.DryRun || j.check || c.Mode != config.ModeFull {
		if producer, err = j.producer(ctx); err != nil {
			return err
		}
		defer producer.Close()
	}
	var ksql ksqlClient
	var facts ksqldb.Facts
	if c.KsqlDB.URL != "" {
		if ksql, err = j.open.newKsql(j.ksqlConfig()); err != nil {
			return backfill.Errorf(backfill.KindConfig, "ksqldb settings: %w", err)
		}
	}
	verify := ksql != nil && !c.DryRun && c.KsqlDB.Verify != config.VerifyNone
	// Verification and delta mode need the table's columns from DESCRIBE, so
	// they run the preflight even when ksqldb.preflight is off.
	if ksql != nil && (c.KsqlDB.Preflight || verify || c.Mode != config.ModeFull) {
		want := ksqldb.Expectation{
			Topic: c.Kafka.Topic, ValueColumn: codec.ValueFields()[0], Partitions: j.rep.Partitions,
			KeySubject: codec.Schemas().Key.Subject, ValueSubject: codec.Schemas().Value.Subject, KeySchemaID: codec.Schemas().Key.ID,
		}
		if facts, err = ksql.Preflight(ctx, want); err != nil {
			return err
		}
		j.log.Info("ksqlDB preflight passed", "stream", c.KsqlDB.Stream, "table", c.KsqlDB.Table, "facts", facts)
		for _, w := range facts.Warnings {
			j.log.Warn("ksqlDB preflight could not check everything: "+w, "table", c.KsqlDB.Table)
		}
	}
	if j.check {
		// The query as a dry run: its result's columns bound as a run
		// binds them, and the bytes it will process; nothing is billed.
		check := Pipeline(c)
		check.Source, check.Codec, check.Logger = j.open.newSource(BigQueryConfig(c), j.log), codec, j.log
		if j.rep.SourceCheck, err = check.CheckSource(ctx); err != nil {
			return err
		}
		if sc := j.rep.SourceCheck; sc != nil {
			j.log.Info("BigQuery dry run passed: the result's columns match the schemas", "columns", sc.Columns, "location", sc.Location, "bytes_processed", sc.BytesProcessed)
		}
		j.log.Info("check passed: schemas, topic, ksqlDB objects and the query's result match; nothing was written or billed")
		return nil
	}

	// The topic's offsets before the first record: they decide auto mode
	// and are what delta mode's lookups wait for ksqlDB to have aggregated.
	var before []backfill.Watermarks
	if producer != nil {
		if before, err = producer.EndOffsets(ctx, j.rep.Partitions); err != nil {
			return err
		}
		defer func() { j.rep.PartitionsWritten = partitionWrites(before, producer.Written()) }()
	}

	pipeline := Pipeline(c)
	p := &pipeline
	p.Source, p.Codec, p.Logger = j.open.newSource(BigQueryConfig(c), j.log), codec, j.log
	p.OnProgress = j.progress
	mode := j.chooseMode(before)
	j.rep.Mode = string(mode)
	if mode == config.ModeDelta {
		// Only once ksqlDB has aggregated every record the topic held does
		// a key missing from the table mean it was never sent.
		if err := j.catchUp(ctx, ksql, producer, facts, "before delta lookups", endOffsets(before)); err != nil {
			return err
		}
		delta := ksql.NewDelta(facts, c.KsqlDB.VerifyBatch)
		p.Filter = delta
		defer func() { d := delta.Counts(); j.rep.Delta = &d }()
	}
	var rec *ksqldb.Recorder
	if verify {
		if rec, err = ksqldb.NewRecorder(recorderMode(c.KsqlDB.Verify), c.KsqlDB.SampleSize, uint64(time.Now().UnixNano())); err != nil {
			return err
		}
		p.Observer = rec
		if c.KsqlDB.Verify == config.VerifyFull {
			p.OnOpen = func(total uint64, known bool) error {
				if err := fullVerifyBound(total, known); err != nil {
					return err
				}
				if known {
					rec.Reserve(total)
				}
				return nil
			}
		}
	}
	if producer != nil && !c.DryRun {
		p.Producer = producer
	}
	err = p.Run(ctx, j.rep)
	if p.Producer != nil && (err == nil || j.rep.RecordsProduced > 0) {
		// After a failed produce too: what was acknowledged may have been
		// stored twice.
		j.rep.Duplicates = j.readBack(ctx, producer, before, facts)
	}
	if err != nil {
		return err
	}
	if !verify {
		if !c.DryRun {
			j.log.Warn("ksqlDB verification is off: nothing proves that ksqlDB decoded the records (set ksqldb.verify)")
		}
		return nil
	}
	// Verify once ksqlDB has committed past the last record the job wrote
	// on every partition: then a key missing from the table is missing.
	if err := j.catchUp(ctx, ksql, producer, facts, "before verification", producer.Written().Next()); err != nil {
		return err
	}
	opts := ksqldb.VerifyOptions{BatchKeys: c.KsqlDB.VerifyBatch, MaxExamples: 5, UseQueryStream: true}
	j.log.Info("verifying with ksqlDB pull queries", "mode", string(c.KsqlDB.Verify), "keys", rec.Observed())
	v, err := ksql.Verify(ctx, facts, rec, opts)
	j.rep.Verification = &v
	if err == nil {
		j.log.Info("ksqlDB verification passed", "checked", v.Checked, "matched", v.Matched, "table_smaller", v.TableSmaller, "seconds", v.Seconds)
	}
	return err
}

// fullVerifyBound refuses, before anything is read, a result too large to
// verify in full within the Job's memory.
func fullVerifyBound(total uint64, known bool) error {
	if !known || total <= ksqldb.MaxFullKeys {
		return nil
	}
	return backfill.Errorf(backfill.KindConfig,
		"ksqldb.verify=full keeps 16 bytes per record in memory, and the result has %d rows (about %d MiB, up to twice that while it grows), above the limit of %d: "+
			"use ksqldb.verify=sample, or shard the run (shard.count) so that each shard verifies at most %d rows",
		total, total*16>>20, ksqldb.MaxFullKeys, ksqldb.MaxFullKeys)
}

// chooseMode resolves mode=auto from the topic's offsets: full only when
// every partition's end offset is 0, that is when the topic has never held
// a record; any other topic gets delta, after the catch-up barrier. What
// the topic still holds does not count: retention (or
// kafka-delete-records) can empty it while the table keeps every user.
// The table is never asked: an empty answer cannot tell a new table from
// one still restoring or a query that has not caught up.
func (j *job) chooseMode(before []backfill.Watermarks) config.Mode {
	if j.cfg.Mode != config.ModeAuto {
		return j.cfg.Mode
	}
	var ever, held int64
	for _, w := range before {
		ever += w.End
		held += w.End - w.Start
	}
	mode := config.ModeFull
	if ever > 0 {
		mode = config.ModeDelta
	}
	j.log.Info("mode=auto chose "+string(mode), "topic", j.cfg.Kafka.Topic, "records_ever_written", ever, "records_on_topic", held)
	return mode
}

// catchUp waits, with the barrier's settings, until ksqlDB's table query
// has committed target, and records the wait in the report. A partition
// whose remaining lag the topic shows to be transaction markers only is
// caught up: an end offset counts markers that Kafka Streams before 3.1
// does not commit past.
func (j *job) catchUp(ctx context.Context, ksql ksqlClient, topic topicProducer, facts ksqldb.Facts, stage string, target map[int32]int64) error {
	j.log.Info("waiting for ksqlDB's table query to aggregate the topic", "stage", stage, "table", facts.Table, "target_offsets", target)
	cu, err := ksql.CatchUp(ctx, facts, target, ksqldb.CatchUpOptions{
		Stage: stage, Stall: j.cfg.KsqlDB.StallTimeout, ProgressEvery: j.cfg.Pipeline.ProgressInterval, Log: j.log,
		OnlyMarkers: topic.OnlyMarkers,
	})
	j.rep.CatchUps = append(j.rep.CatchUps, cu)
	return err
}

// newRunID returns a random id for one attempt.
func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// runHeader returns the header value the producer sets: the run id, or
// nothing when the header is off.
func runHeader(on bool, id string) string {
	if !on {
		return ""
	}
	return id
}
