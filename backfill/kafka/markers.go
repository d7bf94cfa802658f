package kafka

import (
	"context"
	"fmt"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// OnlyMarkers reports whether the topic's partition holds, from offset
// from up to (not including) to, no record a consumer is handed: only
// transaction markers (control records), or offsets compaction or
// retention removed. A list-offsets end offset counts markers, and Kafka
// Streams before 3.1 (ksqlDB <= 0.22, CP <= 7.0) does not commit past a
// trailing marker until the next record arrives (StreamTask.commitNeeded;
// apache/kafka#11151), so such a gap between a query's committed offset
// and the end offset is caught up, not lag.
//
// It reads with isolation.level=read_uncommitted, so the records of open
// and aborted transactions count as records: a query reading
// read_committed (processing.guarantee exactly_once*) may skip those and
// still be reported behind. The consumer uses the producer's connection
// settings, is assigned the partition and commits nothing.
func (p *Producer) OnlyMarkers(ctx context.Context, partition int32, from, to int64) (bool, error) {
	if from >= to {
		return true, nil
	}
	m, err := p.cfg.consumerConfig("ordermin-backfill-markers", "read_uncommitted", "earliest")
	if err != nil {
		return false, err
	}
	c, err := ckafka.NewConsumer(&m)
	if err != nil {
		return false, backfill.Errorf(backfill.KindInternal, "creating the consumer that looks for transaction markers: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, p.requestTimeout(ctx))
	defer cancel()
	topic := p.topic
	if err := c.Assign([]ckafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: ckafka.Offset(from)}}); err != nil {
		return false, fmt.Errorf("assigning partition %d of %q at offset %d: %w", partition, topic, from, err)
	}
	for {
		if ctx.Err() != nil {
			return false, fmt.Errorf("reading partition %d of %q from offset %d: %w", partition, topic, from, context.Cause(ctx))
		}
		switch e := c.Poll(100).(type) {
		case *ckafka.Message:
			if e.TopicPartition.Error != nil {
				return false, fmt.Errorf("reading partition %d of %q at offset %d: %w", partition, topic, e.TopicPartition.Offset, e.TopicPartition.Error)
			}
			return int64(e.TopicPartition.Offset) >= to, nil // the first record a consumer is handed
		case ckafka.PartitionEOF:
			return true, nil
		case ckafka.Error:
			if e.IsFatal() {
				return false, fmt.Errorf("reading partition %d of %q: %w", partition, topic, e)
			}
			p.noteAuthError(e)
		case ckafka.OAuthBearerTokenRefresh:
			if provide := p.cfg.tokenProvider(); provide != nil {
				answerTokenRefresh(ctx, provide, c, p.log)
			}
		}
	}
}
