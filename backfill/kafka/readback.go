package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// RunHeader is the record header that names the run that wrote a record.
const RunHeader = "ordermin-backfill-run"

// producerOnly are producer settings a read-back consumer must not get.
var producerOnly = []string{
	"linger.ms", "batch.size", "message.timeout.ms", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
	"max.in.flight.requests.per.connection", "go.delivery.report.fields", "go.events.channel.size", "go.produce.channel.size",
	"go.logs.channel.enable", "compression.type", "enable.idempotence", "acks", "partitioner", "allow.auto.create.topics",
}

// ReadBackLimits bound a read-back.
type ReadBackLimits struct {
	MaxRecords int64         // stop after reading this many records; default 1,000,000
	Timeout    time.Duration // stop after this long; default 2m
	MaxKeys    int           // duplicated keys kept for the report; default 100
}

// ReadBack reads the records at the given offsets (inclusive ranges per
// partition: the offsets between the end offset before the run and the
// highest acknowledged one that the run did not acknowledge) and sorts
// them into duplicates (they carry runID in the RunHeader header: the
// broker stored one of this run's batches twice) and foreign records
// (written by someone else, e.g. CDC). It uses the producer's connection
// settings in a consumer of its own and commits nothing.
func (p *Producer) ReadBack(ctx context.Context, gaps map[int32][][2]int64, runID string, lim ReadBackLimits) (backfill.Duplicates, error) {
	if lim.MaxRecords <= 0 {
		lim.MaxRecords = 1_000_000
	}
	if lim.Timeout <= 0 {
		lim.Timeout = 2 * time.Minute
	}
	if lim.MaxKeys <= 0 {
		lim.MaxKeys = 100
	}
	d := backfill.Duplicates{Status: "checked"}
	for _, rs := range gaps {
		for _, r := range rs {
			d.Unacknowledged += r[1] - r[0] + 1
		}
	}
	if d.Unacknowledged == 0 {
		return d, nil
	}
	m, err := p.cfg.configMap()
	if err != nil {
		return d, err
	}
	for _, k := range producerOnly {
		delete(m, k)
	}
	m["group.id"] = "ordermin-backfill-readback-" + runID // never joined nor committed: partitions are assigned
	m["enable.auto.commit"] = false
	m["enable.partition.eof"] = true
	m["client.id"] = "ordermin-backfill-readback"
	c, err := ckafka.NewConsumer(&m)
	if err != nil {
		return d, backfill.Errorf(backfill.KindInternal, "creating the read-back consumer: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	seen := map[int64]bool{}
	for part, rs := range gaps {
		for _, r := range rs {
			if err := p.readRange(ctx, c, part, r, runID, lim, &d, seen); err != nil {
				d.Status = "incomplete"
				return d, err
			}
		}
	}
	return d, nil
}

// readRange reads partition part from r[0] through r[1].
func (p *Producer) readRange(ctx context.Context, c *ckafka.Consumer, part int32, r [2]int64, runID string, lim ReadBackLimits, d *backfill.Duplicates, seen map[int64]bool) error {
	topic := p.topic
	if err := c.Assign([]ckafka.TopicPartition{{Topic: &topic, Partition: part, Offset: ckafka.Offset(r[0])}}); err != nil {
		return fmt.Errorf("assigning partition %d at offset %d: %w", part, r[0], err)
	}
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("reading partition %d back (offsets %d–%d): %w", part, r[0], r[1], context.Cause(ctx))
		}
		if d.Read >= lim.MaxRecords {
			return fmt.Errorf("read %d records back, the limit", d.Read)
		}
		switch e := c.Poll(100).(type) {
		case *ckafka.Message:
			off := int64(e.TopicPartition.Offset)
			if e.TopicPartition.Error != nil {
				return fmt.Errorf("reading partition %d at offset %d: %w", part, off, e.TopicPartition.Error)
			}
			if off > r[1] {
				return nil // the range may hold gaps of its own (compaction, aborted transactions)
			}
			d.Read++
			if string(header(e.Headers, RunHeader)) != runID {
				d.Foreign++
				continue
			}
			d.Records++
			if key, ok := decodeKey(e.Key); ok && !seen[key] {
				seen[key] = true
				if len(d.Keys) < lim.MaxKeys {
					d.Keys = append(d.Keys, key)
				}
			}
			if off == r[1] {
				return nil
			}
		case ckafka.PartitionEOF:
			return nil // nothing more on the partition
		case ckafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("reading partition %d back: %w", part, e)
			}
			p.noteAuthError(e)
		case ckafka.OAuthBearerTokenRefresh:
			if provide := p.cfg.tokenProvider(); provide != nil {
				answerTokenRefresh(ctx, provide, c, p.log)
			}
		}
	}
}

func header(hs []ckafka.Header, key string) []byte {
	for _, h := range hs {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// decodeKey decodes a Confluent wire-format Avro long (or int) key.
func decodeKey(b []byte) (int64, bool) {
	if len(b) < 6 || b[0] != 0 {
		return 0, false
	}
	v, n := binary.Varint(b[5:])
	return v, n > 0
}
