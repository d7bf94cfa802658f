package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/backfill/schemaregistry"
	"github.com/ordermin/ordermin-backfill/config"
)

// job wires the outside systems into one run.
type job struct {
	cfg   config.Config
	log   *slog.Logger
	rep   *backfill.Report
	check bool // preflight only
}

func (j *job) run(ctx context.Context) error {
	c := j.cfg
	j.rep.Topic = c.Kafka.Topic

	codec, err := j.schemas(ctx)
	if err != nil {
		return err
	}
	var producer *kafka.Producer
	if !c.DryRun || j.check {
		if producer, err = j.producer(ctx); err != nil {
			return err
		}
		defer producer.Close()
	}
	var ksql *ksqldb.Client
	var facts ksqldb.Facts
	if c.KsqlDB.URL != "" {
		if ksql, err = ksqldb.New(j.ksqlConfig()); err != nil {
			return backfill.Errorf(backfill.KindConfig, "ksqldb settings: %v", err)
		}
	}
	verify := ksql != nil && !c.DryRun && c.KsqlDB.Verify != "none"
	// Verification and delta mode need the table's columns from DESCRIBE, so
	// they run the preflight even when ksqldb.preflight is off.
	if ksql != nil && (c.KsqlDB.Preflight || verify || c.Mode != "full") {
		want := ksqldb.Expectation{
			Topic: c.Kafka.Topic, ValueColumn: codec.ValueFields()[0], Partitions: j.rep.Partitions,
			KeySubject: codec.Schemas().Key.Subject, ValueSubject: codec.Schemas().Value.Subject,
		}
		if facts, err = ksql.Preflight(ctx, want); err != nil {
			return err
		}
		j.log.Info("ksqlDB preflight passed", "stream", c.KsqlDB.Stream, "table", c.KsqlDB.Table, "facts", facts)
	}
	if j.check {
		j.log.Info("check passed: schemas, topic and ksqlDB objects match; nothing was written")
		return nil
	}

	p := &backfill.Pipeline{
		Source:        bigquery.New(j.bigQueryConfig(), j.log),
		Codec:         codec,
		Mapping:       backfill.Mapping{KeyColumn: c.Mapping.KeyColumn, ValueColumns: c.Mapping.ValueColumns},
		Workers:       c.Pipeline.Workers,
		BatchSize:     c.Pipeline.BatchSize,
		FlushTimeout:  c.Kafka.MessageTimeout + 10*time.Second,
		DrainTimeout:  c.Pipeline.DrainTimeout,
		ProgressEvery: c.Pipeline.ProgressInterval,
		AllowEmpty:    c.Pipeline.AllowEmpty,
		Logger:        j.log,
	}
	j.rep.ShardIndex, j.rep.ShardCount = c.Shard.Index, c.Shard.Count
	var delta *ksqldb.Delta
	if delta, err = j.deltaMode(ctx, ksql, facts); err != nil {
		return err
	}
	if delta != nil {
		p.Filter = delta
		defer func() { d := delta.Counts(); j.rep.Delta = &d }()
	}
	var rec *ksqldb.Recorder
	if verify {
		if rec, err = ksqldb.NewRecorder(c.KsqlDB.Verify, c.KsqlDB.SampleSize, uint64(time.Now().UnixNano())); err != nil {
			return backfill.Errorf(backfill.KindConfig, "ksqldb.verify: %v", err)
		}
		p.Observer = rec
	}
	if producer != nil {
		p.Producer = producer
	}
	if err := p.Run(ctx, j.rep); err != nil {
		return err
	}
	if !verify {
		if !c.DryRun {
			j.log.Warn("ksqlDB verification is off: nothing proves that ksqlDB decoded the records (set ksqldb.verify)")
		}
		return nil
	}
	if producer != nil {
		producer.Close() // every record is acknowledged; free the connections before verifying
	}
	opts := ksqldb.VerifyOptions{BatchKeys: c.KsqlDB.VerifyBatch, Deadline: c.KsqlDB.VerifyTimeout, MaxExamples: 5, UseQueryStream: true}
	j.log.Info("verifying with ksqlDB pull queries", "mode", c.KsqlDB.Verify, "keys", rec.Observed(), "deadline", c.KsqlDB.VerifyTimeout.String())
	v, err := ksql.Verify(ctx, facts, rec, opts)
	j.rep.Verification = &v
	if err == nil {
		j.log.Info("ksqlDB verification passed", "checked", v.Checked, "matched", v.Matched, "table_smaller", v.TableSmaller, "seconds", v.Seconds)
	}
	return err
}

// deltaMode decides between full and delta mode and returns the delta
// filter, or nil for full mode.
func (j *job) deltaMode(ctx context.Context, ksql *ksqldb.Client, facts ksqldb.Facts) (*ksqldb.Delta, error) {
	mode := j.cfg.Mode
	if mode == "auto" {
		mode = "full"
		if ksql != nil {
			empty, err := ksql.TableEmpty(ctx, facts)
			switch {
			case err != nil && backfill.KindOf(err) == backfill.KindUnavailable:
				return nil, err
			case err != nil:
				j.log.Warn("mode=auto: ksqlDB refused a table scan (ksql.query.pull.table.scan.enabled?), using delta mode", "error", err.Error())
				mode = "delta"
			case !empty:
				mode = "delta"
			}
		}
		j.log.Info("mode=auto chose "+mode, "table", facts.Table)
	}
	j.rep.Mode = mode
	if mode != "delta" {
		return nil, nil
	}
	return ksql.NewDelta(facts, j.cfg.KsqlDB.VerifyBatch), nil
}

func (j *job) schemas(ctx context.Context) (*backfill.Codec, error) {
	c := j.cfg.SchemaRegistry
	sr, err := schemaregistry.New(schemaregistry.Config{
		URL: c.URL, Username: c.Username, Password: c.Password.Reveal(), TLSCAFile: c.TLSCAFile,
		TLSInsecureSkipVerify: c.TLSInsecureSkipVerify, Timeout: c.Timeout, Retries: c.Retries,
		KeySchema: c.KeySchema, ValueSchema: c.ValueSchema,
	})
	if err != nil {
		return nil, err
	}
	if c.TLSInsecureSkipVerify {
		j.log.Warn("schema_registry.tls_insecure_skip_verify is on: the registry's certificate is not checked")
	}
	s, err := sr.Fetch(ctx, j.cfg.Kafka.Topic)
	if err != nil {
		return nil, err
	}
	codec, err := backfill.NewCodec(s)
	if err != nil {
		return nil, err
	}
	j.log.Info("schemas fetched", "key_subject", s.Key.Subject, "key_version", s.Key.Version, "key_id", s.Key.ID,
		"value_subject", s.Value.Subject, "value_version", s.Value.Version, "value_id", s.Value.ID, "value_fields", codec.ValueFields())
	return codec, nil
}

func (j *job) producer(ctx context.Context) (*kafka.Producer, error) {
	k := j.cfg.Kafka
	if k.TLSInsecureSkipVerify {
		j.log.Warn("kafka.tls_insecure_skip_verify is on: broker certificates are not checked")
	}
	p, err := kafka.New(kafka.Config{
		Brokers: k.Brokers, Topic: k.Topic, SecurityProtocol: k.SecurityProtocol, SASLMechanism: k.SASLMechanism,
		SASLUsername: k.SASLUsername, SASLPassword: k.SASLPassword.Reveal(), TLSCAFile: k.TLSCAFile,
		TLSInsecureSkipVerify: k.TLSInsecureSkipVerify, AWSRegion: k.AWSRegion, Compression: k.Compression, Linger: k.Linger,
		BatchBytes: k.BatchBytes, MessageTimeout: k.MessageTimeout, QueueMaxMessages: k.QueueMaxMessages,
		QueueMaxKBytes: k.QueueMaxKBytes, ConnectTimeout: k.ConnectTimeout, Properties: k.Properties,
	}, j.log)
	if err != nil {
		return nil, err
	}
	n, err := p.Partitions(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	j.rep.Partitions = n
	j.log.Info("kafka topic found", "topic", k.Topic, "partitions", n)
	return p, nil
}

func (j *job) bigQueryConfig() bigquery.Config {
	b := j.cfg.BigQuery
	params := make([]bigquery.Param, len(b.Params))
	for i, p := range b.Params {
		params[i] = bigquery.Param{Name: p.Name, Type: p.Type, Value: p.Value}
	}
	return bigquery.Config{
		Project: b.Project, BillingProject: b.BillingProject, Location: b.Location, SQL: j.cfg.SQL(), Params: params,
		ReadAPI: b.ReadAPI, CredentialsFile: b.CredentialsFile, Endpoint: b.Endpoint, StorageEndpoint: b.StorageEndpoint,
		StoragePlaintext: b.StoragePlaintext, QueryTimeout: b.QueryTimeout,
	}
}

func (j *job) ksqlConfig() ksqldb.Config {
	q := j.cfg.KsqlDB
	if q.TLSInsecureSkipVerify {
		j.log.Warn("ksqldb.tls_insecure_skip_verify is on: ksqlDB's certificate is not checked")
	}
	return ksqldb.Config{
		URL: q.URL, Username: q.Username, Password: q.Password.Reveal(), TLSCAFile: q.TLSCAFile,
		TLSInsecureSkipVerify: q.TLSInsecureSkipVerify, Timeout: q.Timeout, Retries: q.Retries, Stream: q.Stream, Table: q.Table,
	}
}
