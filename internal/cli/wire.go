package cli

import (
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/backfill/schemaregistry"
	"github.com/ordermin/ordermin-backfill/config"
)

// The one translation of the settings into the adapters' configurations
// and the pipeline's. The job, internal/bench and cmd/bench-bigquery all
// build them here, so that what they measure is what the job runs.

// BigQueryConfig is the BigQuery source's configuration.
func BigQueryConfig(c config.Config) bigquery.Config {
	b := c.BigQuery
	params := make([]bigquery.Param, len(b.Params))
	for i, p := range b.Params {
		params[i] = bigquery.Param{Name: p.Name, Type: p.Type, Value: p.Value}
	}
	return bigquery.Config{
		Project: b.Project, BillingProject: b.BillingProject, Location: b.Location, Params: params,
		Query: b.Query, Table: b.Table, OrderColumn: b.OrderColumn, KeyColumn: c.Mapping.KeyColumn,
		ShardIndex: c.Shard.Index, ShardCount: c.Shard.Count, QueryKey: b.QueryKey,
		ReadAPI: string(b.ReadAPI), CredentialsFile: b.CredentialsFile, Endpoint: b.Endpoint, StorageEndpoint: b.StorageEndpoint,
		StoragePlaintext: b.StoragePlaintext, DestinationTable: b.DestinationTable, ReadStreams: b.ReadStreams,
		ReadSessionTimeout: b.ReadSessionTimeout, ReadRetryTimeout: b.ReadRetryTimeout, QueryTimeout: b.QueryTimeout,
	}
}

// KafkaConfig is the producer's configuration; runID goes into every
// record's header when kafka.run_header is on.
func KafkaConfig(c config.Config, runID string) kafka.Config {
	k := c.Kafka
	return kafka.Config{
		Brokers: k.Brokers, Topic: k.Topic, SecurityProtocol: k.SecurityProtocol, SASLMechanism: string(k.SASLMechanism),
		SASLUsername: k.SASLUsername, SASLPassword: k.SASLPassword.Reveal(), TLSCAFile: k.TLSCAFile,
		TLSInsecureSkipVerify: k.TLSInsecureSkipVerify, AWSRegion: k.AWSRegion, Compression: k.Compression, Linger: k.Linger,
		BatchBytes: k.BatchBytes, MessageTimeout: k.MessageTimeout, QueueMaxMessages: k.QueueMaxMessages,
		QueueMaxKBytes: k.QueueMaxKBytes, ConnectTimeout: k.ConnectTimeout, Properties: k.Properties,
		RunID: runHeader(k.RunHeader, runID),
	}
}

// KsqlDBConfig is the ksqlDB client's configuration.
func KsqlDBConfig(c config.Config) ksqldb.Config {
	q := c.KsqlDB
	return ksqldb.Config{
		URL: q.URL, Username: q.Username, Password: q.Password.Reveal(), TLSCAFile: q.TLSCAFile,
		TLSInsecureSkipVerify: q.TLSInsecureSkipVerify, Timeout: q.Timeout, Retries: q.Retries, Stream: q.Stream, Table: q.Table,
	}
}

// recorderMode is the verification recorder's mode for ksqldb.verify.
// config.Validate has checked the setting; a kind it does not know reaches
// ksqldb.NewRecorder as is, which refuses it as an internal error.
func recorderMode(v config.VerifyKind) ksqldb.VerifyMode {
	switch v {
	case config.VerifySample:
		return ksqldb.ModeSample
	case config.VerifyFull:
		return ksqldb.ModeFull
	case config.VerifyNone:
		return ksqldb.ModeNone
	}
	return ksqldb.VerifyMode(v)
}

// SchemaRegistryConfig is the Schema Registry client's configuration.
func SchemaRegistryConfig(c config.Config) schemaregistry.Config {
	r := c.SchemaRegistry
	return schemaregistry.Config{
		URL: r.URL, Username: r.Username, Password: r.Password.Reveal(), TLSCAFile: r.TLSCAFile,
		TLSInsecureSkipVerify: r.TLSInsecureSkipVerify, Timeout: r.Timeout, Retries: r.Retries,
		KeySchema: r.KeySchema, ValueSchema: r.ValueSchema,
	}
}

// flushGrace is how much longer than kafka.message_timeout the pipeline
// waits for the last deliveries: librdkafka fails a record once its
// message timeout passes, so every report arrives within it.
const flushGrace = 10 * time.Second

// Pipeline is the pipeline's settings; the caller adds its source, codec,
// producer, observer, filter and logger.
func Pipeline(c config.Config) backfill.Pipeline {
	return backfill.Pipeline{
		Mapping:       backfill.Mapping{KeyColumn: c.Mapping.KeyColumn, ValueColumns: c.Mapping.ValueColumns},
		Workers:       c.Pipeline.Workers,
		BatchSize:     c.Pipeline.BatchSize,
		FlushTimeout:  c.Kafka.MessageTimeout + flushGrace,
		DrainTimeout:  c.Pipeline.DrainTimeout,
		ProgressEvery: c.Pipeline.ProgressInterval,
		AllowEmpty:    c.Pipeline.AllowEmpty,
		Shard:         backfill.Shard{Index: c.Shard.Index, Count: c.Shard.Count},
	}
}
