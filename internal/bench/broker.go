package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic and Partitions are the stream's topic as every scenario sees it.
const (
	Topic      = "STREAM.ORDER.INSERT"
	Partitions = 6
)

// Broker modes: how the in-process kfake broker keeps what it is sent.
const (
	// BrokerRetain stores every batch (CRC and sequence checks, log append)
	// but trims each partition to about 1 MiB in the background, as a real
	// broker's retention would, so that the broker's memory stays bounded
	// and RSS compares across row counts. The default.
	BrokerRetain = "retain"
	// BrokerKeep stores everything in memory: RSS grows with the row count.
	BrokerKeep = "keep"
	// BrokerBlackhole acknowledges without storing (kfake.BlackholeProduce).
	BrokerBlackhole = "blackhole"
)

// Retention applied in BrokerRetain mode.
const (
	segmentBytes   = 256 << 10
	retentionBytes = 1 << 20
	retentionEvery = 50 * time.Millisecond
)

// broker is one in-process kfake cluster.
type broker struct {
	c    *kfake.Cluster
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
	b := &broker{c: c, stop: make(chan struct{}), done: make(chan struct{})}
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
	b.c.Close()
}

// endOffsets returns the sum of the topic's high watermarks: how many
// records the broker appended, whatever it has since trimmed.
func (b *broker) endOffsets(ctx context.Context) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs()...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = Topic
	for p := range int32(Partitions) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return 0, fmt.Errorf("list offsets partition %d: error code %d", p.Partition, p.ErrorCode)
			}
			sum += p.Offset
		}
	}
	return sum, nil
}
