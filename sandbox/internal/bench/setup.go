package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/config"
	"github.com/ordermin/ordermin-backfill/internal/cli"
)

// The schemas ksqlDB registers for the stream when CREATE STREAM runs (a
// bare "long" key, a KsqlDataSourceSchema record value), with the ids a
// registry would give them.
const (
	keySchemaID   = 1
	valueSchemaID = 2
)

var keySchema, valueSchema = backfilltest.KsqlKeySchema, backfilltest.KsqlValueSchema

func newCodec() (*backfill.Codec, error) {
	return backfill.NewCodec(backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: Topic + "-key", Version: 1, ID: keySchemaID, Schema: keySchema},
		Value: backfill.RegisteredSchema{Subject: Topic + "-value", Version: 1, ID: valueSchemaID, Schema: valueSchema},
	})
}

// benchRunID is the run header's value, as long as a real run id.
const benchRunID = "0123456789abcdef"

// producerConfig is the production producer's configuration, built as the
// job builds it (internal/cli) from config.Default() with t's overrides,
// pointed at the bench's broker. The job writes its run header by default
// (kafka.run_header), so the limit produces the same records: the header
// is the record's cost, not the pipeline's.
func producerConfig(brokers []string, t Tuning) kafka.Config {
	c := t.apply()
	c.Kafka.Brokers, c.Kafka.Topic = brokers, Topic
	return cli.KafkaConfig(c, benchRunID)
}

// pipeline is the job's pipeline as internal/cli builds it from
// config.Default() with t's overrides, without progress logs.
func pipeline(src backfill.Source, codec *backfill.Codec, prod backfill.Producer, t Tuning) *backfill.Pipeline {
	p := cli.Pipeline(t.apply())
	p.Source, p.Codec, p.Producer, p.ProgressEvery = src, codec, prod, 0
	return &p
}

func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// ring holds pre-encoded wire-format records in one flat buffer, so that
// the limit scenario produces bytes without encoding them. Entry j is the
// record the job would produce for source row j*stride: the same byte
// sizes as the job's records over the same row count.
type ring struct {
	buf  []byte
	offs []uint32 // entry j: key buf[offs[2j]:offs[2j+1]], value buf[offs[2j+1]:offs[2j+2]]
}

const ringSize = 1 << 16

func newRing(codec *backfill.Codec, rows int64) (*ring, error) {
	enc, err := codec.Bind(backfill.Mapping{KeyColumn: config.Default().Mapping.KeyColumn}, backfilltest.OrderColumns)
	if err != nil {
		return nil, err
	}
	w := enc.NewWriter()
	n := int64(min(rows, ringSize))
	stride := max(rows/ringSize, 1)
	r := &ring{buf: make([]byte, 0, n*16), offs: make([]uint32, 0, 2*n+1)}
	r.offs = append(r.offs, 0)
	row := make([]any, 0, 2)
	for j := range n {
		row = backfilltest.DefaultRow(j*stride, row)
		k, v, skip, err := w.Encode(row)
		if err != nil || skip != "" {
			return nil, fmt.Errorf("encoding ring entry %d: skip=%q err=%v", j, skip, err)
		}
		r.buf = append(r.buf, k...)
		r.offs = append(r.offs, uint32(len(r.buf)))
		r.buf = append(r.buf, v...)
		r.offs = append(r.offs, uint32(len(r.buf)))
	}
	return r, nil
}

func (r *ring) at(i int64) (key, value []byte) {
	j := int(i % int64(len(r.offs)/2))
	return r.buf[r.offs[2*j]:r.offs[2*j+1]], r.buf[r.offs[2*j+1]:r.offs[2*j+2]]
}

// discardProducer acknowledges every record at once and keeps nothing:
// the job pipeline against it shows the job's own CPU and memory, without
// librdkafka and the broker.
type discardProducer struct{ produced atomic.Int64 }

func (d *discardProducer) Produce(ctx context.Context, _, _ []byte) error {
	d.produced.Add(1)
	return nil
}

func (d *discardProducer) Flush(context.Context) error { return nil }

func (d *discardProducer) Deliveries() backfill.Deliveries {
	n := d.produced.Load()
	return backfill.Deliveries{Produced: n, Acked: n}
}
