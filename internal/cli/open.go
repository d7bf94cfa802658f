package cli

import (
	"context"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
)

// The run's connections, opened through j.open.

// schemas fetches the topic's schemas and builds the codec.
func (j *job) schemas(ctx context.Context) (*backfill.Codec, error) {
	sr, err := j.open.newRegistry(SchemaRegistryConfig(j.cfg))
	if err != nil {
		return nil, err
	}
	if j.cfg.SchemaRegistry.TLSInsecureSkipVerify {
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

// producer opens the producer and reads the topic's partition count.
func (j *job) producer(ctx context.Context) (topicProducer, error) {
	k := j.cfg.Kafka
	if k.TLSInsecureSkipVerify {
		j.log.Warn("kafka.tls_insecure_skip_verify is on: broker certificates are not checked")
	}
	p, err := j.open.newProducer(KafkaConfig(j.cfg, j.rep.RunID), j.log)
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

// ksqlConfig is the ksqlDB client's configuration, warning about an
// unchecked certificate.
func (j *job) ksqlConfig() ksqldb.Config {
	q := j.cfg.KsqlDB
	if q.TLSInsecureSkipVerify {
		j.log.Warn("ksqldb.tls_insecure_skip_verify is on: ksqlDB's certificate is not checked")
	}
	return KsqlDBConfig(j.cfg)
}
