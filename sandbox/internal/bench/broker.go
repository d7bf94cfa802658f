package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic and Partitions are the stream's topic as every scenario sees it.
const (
	Topic      = "STREAM.ORDER.INSERT"
	Partitions = 6
)

// Broker modes: how the kfake broker keeps what it is sent.
const (
	// BrokerRetain stores every batch (CRC and sequence checks, log append)
	// but trims each partition to about 1 MiB in the background, as a real
	// broker's retention would, so that the broker's memory stays bounded
	// across row counts. The default.
	BrokerRetain = "retain"
	// BrokerKeep stores everything in memory: the broker's RSS grows with
	// the row count.
	BrokerKeep = "keep"
	// BrokerBlackhole acknowledges without storing (kfake.BlackholeProduce).
	BrokerBlackhole = "blackhole"
)

// Retention applied in BrokerRetain mode. They are broker configs, which
// kfake falls back to for every topic without its own, so they hold for the
// topic re-created before each scenario too.
const (
	segmentBytes   = 256 << 10
	retentionBytes = 1 << 20
	retentionEvery = 50 * time.Millisecond
)

// broker is one in-process kfake cluster with an admin client. The bench
// parent runs one for every scenario; a child run by hand without
// -brokers runs its own.
type broker struct {
	c    *kfake.Cluster
	cl   *kgo.Client // admin requests: topic reset
	stop chan struct{}
	done chan struct{}
}

func startBroker(mode string) (*broker, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(Partitions, Topic)}
	switch mode {
	case BrokerRetain:
		opts = append(opts, kfake.BrokerConfigs(map[string]string{
			"log.segment.bytes":   strconv.Itoa(segmentBytes),
			"log.retention.bytes": strconv.Itoa(retentionBytes),
		}))
	case BrokerKeep:
	case BrokerBlackhole:
		opts = append(opts, kfake.BlackholeProduce())
	default:
		return nil, fmt.Errorf("unknown broker mode %q (want %s, %s or %s)", mode, BrokerRetain, BrokerKeep, BrokerBlackhole)
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, err
	}
	b := &broker{c: c, cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		if mode != BrokerRetain {
			return
		}
		t := time.NewTicker(retentionEvery)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				c.ApplyRetention()
			}
		}
	}()
	return b, nil
}

func (b *broker) addrs() []string { return b.c.ListenAddrs() }

func (b *broker) close() {
	close(b.stop)
	<-b.done
	b.cl.Close()
	b.c.Close()
}

// resetTopic deletes Topic if it exists and creates it anew with
// Partitions partitions: an empty log, high watermarks at zero, and no
// producer state from an earlier scenario.
func (b *broker) resetTopic(ctx context.Context) error {
	if err := b.deleteTopic(ctx); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = Topic, Partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return fmt.Errorf("creating %s: %w", Topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("creating %s: %w", Topic, err)
		}
	}
	return nil
}

// deleteTopic deletes Topic and its log.
func (b *broker) deleteTopic(ctx context.Context) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{Topic} // v0-5
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(Topic) // v6+
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", Topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("deleting %s: %w", Topic, err)
		}
	}
	return nil
}

// endOffsets returns the sum of the topic's high watermarks at brokers:
// how many records the broker appended, whatever it has since trimmed.
func endOffsets(ctx context.Context, brokers []string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	offs, err := listOffsets(ctx, cl, -1)
	var sum int64
	for _, o := range offs {
		sum += o
	}
	return sum, err
}

// listOffsets returns each partition's offset at ts: -1 for the high
// watermark, -2 for the log start.
func listOffsets(ctx context.Context, cl *kgo.Client, ts int64) ([]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = Topic
	for p := range int32(Partitions) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	offs := make([]int64, Partitions)
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets partition %d: %w", p.Partition, err)
			}
			if p.Partition >= 0 && p.Partition < Partitions {
				offs[p.Partition] = p.Offset
				n++
			}
		}
	}
	if n != Partitions {
		return nil, fmt.Errorf("list offsets answered %d of %d partitions", n, Partitions)
	}
	return offs, nil
}
