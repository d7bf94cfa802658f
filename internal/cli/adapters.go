package cli

import (
	"context"
	"log/slog"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/backfill/schemaregistry"
)

// The outside systems as a run uses them: only the methods job.go calls,
// so that its decisions can run in unit tests against stubs.

// registryClient fetches the topic's schemas (schemaregistry.Client).
type registryClient interface {
	Fetch(ctx context.Context, topic string) (backfill.Schemas, error)
}

// topicProducer writes the records and reads the topic (kafka.Producer).
type topicProducer interface {
	backfill.Producer
	Partitions(ctx context.Context) (int, error)
	EndOffsets(ctx context.Context, partitions int) ([]backfill.Watermarks, error)
	Written() *backfill.Written
	ReadBack(ctx context.Context, gaps map[int32][][2]int64, runID string, lim kafka.ReadBackLimits) (backfill.Duplicates, error)
	OnlyMarkers(ctx context.Context, partition int32, from, to int64) (bool, error)
	Close()
}

// ksqlClient checks, waits for and verifies the table (ksqldb.Client).
type ksqlClient interface {
	Preflight(ctx context.Context, want ksqldb.Expectation) (ksqldb.Facts, error)
	CatchUp(ctx context.Context, facts ksqldb.Facts, target map[int32]int64, opts ksqldb.CatchUpOptions) (backfill.CatchUp, error)
	NewDelta(facts ksqldb.Facts, batchKeys int) deltaFilter
	Verify(ctx context.Context, facts ksqldb.Facts, rec *ksqldb.Recorder, opts ksqldb.VerifyOptions) (backfill.Verification, error)
}

// deltaFilter keeps the records the table lacks (ksqldb.Delta).
type deltaFilter interface {
	backfill.Filter
	Counts() backfill.Delta
}

// adapters constructs the outside systems. A nil field means the real
// adapter, so the zero value is what production runs.
type adapters struct {
	registry func(schemaregistry.Config) (registryClient, error)
	producer func(kafka.Config, *slog.Logger) (topicProducer, error)
	ksql     func(ksqldb.Config) (ksqlClient, error)
	source   func(bigquery.Config, *slog.Logger) backfill.Source
}

func (a adapters) newRegistry(cfg schemaregistry.Config) (registryClient, error) {
	if a.registry != nil {
		return a.registry(cfg)
	}
	c, err := schemaregistry.New(cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (a adapters) newProducer(cfg kafka.Config, log *slog.Logger) (topicProducer, error) {
	if a.producer != nil {
		return a.producer(cfg, log)
	}
	p, err := kafka.New(cfg, log)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (a adapters) newKsql(cfg ksqldb.Config) (ksqlClient, error) {
	if a.ksql != nil {
		return a.ksql(cfg)
	}
	c, err := ksqldb.New(cfg)
	if err != nil {
		return nil, err
	}
	return realKsql{c}, nil
}

func (a adapters) newSource(cfg bigquery.Config, log *slog.Logger) backfill.Source {
	if a.source != nil {
		return a.source(cfg, log)
	}
	return bigquery.New(cfg, log)
}

// realKsql is a ksqldb.Client whose NewDelta returns the interface.
type realKsql struct{ *ksqldb.Client }

func (k realKsql) NewDelta(facts ksqldb.Facts, batchKeys int) deltaFilter {
	return k.Client.NewDelta(facts, batchKeys)
}

var (
	_ registryClient = (*schemaregistry.Client)(nil)
	_ topicProducer  = (*kafka.Producer)(nil)
	_ ksqlClient     = realKsql{}
	_ deltaFilter    = (*ksqldb.Delta)(nil)
)
