package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// maxDeliveryErrors bounds how many delivery errors are kept for the report.
const maxDeliveryErrors = 5

// Producer is a backfill.Producer on confluent-kafka-go.
type Producer struct {
	cfg   Config
	p     *ckafka.Producer
	topic string
	log   *slog.Logger

	produced, acked, failed atomic.Int64
	written                 backfill.Written // acknowledged offsets per partition
	headers                 []ckafka.Header  // the run header, or nil
	room                    chan struct{}    // signalled when a delivery frees queue space
	// stopped is set once a delivery has failed or the producer hit a
	// fatal error, so that Produce checks for either with one atomic load
	// rather than taking mu for every record.
	stopped atomic.Bool

	// destroy releases librdkafka's handle (ckafka.Producer.Close), and
	// closeTimeout bounds the wait for it; tests replace both.
	destroy      func()
	closeTimeout time.Duration

	mu     sync.Mutex
	errs   []string
	fatal  error
	closed chan struct{}
	done   sync.WaitGroup // the event and log goroutines
	calls  sync.WaitGroup // metadata and offset requests still using the handle

	// tokens answers OAUTHBEARER token refreshes (AWS_MSK_IAM); else nil.
	tokens *tokenRefresher
	// authErr is the last SASL or TLS failure librdkafka reported.
	authErr atomic.Pointer[ckafka.Error]
}

var _ backfill.Producer = (*Producer)(nil)

// New creates the producer. It does not contact the brokers: call
// Partitions to check that they answer and the topic exists.
func New(cfg Config, log *slog.Logger) (*Producer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := cfg.producerConfig()
	if err != nil {
		if backfill.KindOf(err) != backfill.KindUnclassified {
			return nil, err // the IAM guard's internal error
		}
		return nil, backfill.Errorf(backfill.KindConfig, "kafka settings: %w", err)
	}
	p, err := ckafka.NewProducer(&m)
	if err != nil {
		return nil, backfill.Errorf(backfill.KindConfig, "creating the Kafka producer: %w", err)
	}
	pr := &Producer{cfg: cfg, p: p, topic: cfg.Topic, log: log, room: make(chan struct{}, 1), closed: make(chan struct{}),
		destroy: p.Close, closeTimeout: closeTimeout}
	if cfg.RunID != "" {
		pr.headers = []ckafka.Header{{Key: RunHeader, Value: []byte(cfg.RunID)}}
	}
	if provide := cfg.tokenProvider(); provide != nil {
		pr.tokens = startTokenRefresher(provide, p, log)
	}
	pr.done.Add(2)
	go pr.deliveries()
	go pr.logs()
	log.Info("kafka producer created", cfg.describe()...)
	return pr, nil
}

// Partitions asks the brokers for the topic's metadata within the
// configured connect timeout (or ctx's deadline, if sooner) and returns its
// partition count. Unreachable brokers and a missing topic are clear errors.
func (p *Producer) Partitions(ctx context.Context) (int, error) {
	timeout := p.requestTimeout(ctx)
	type result struct {
		md  *ckafka.Metadata
		err error
	}
	ch := make(chan result, 1)
	p.calls.Add(1) // Close waits for the request: librdkafka's handle must outlive it
	go func() {
		defer p.calls.Done()
		topic := p.topic
		md, err := p.p.GetMetadata(&topic, false, int(timeout/time.Millisecond))
		ch <- result{md, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return 0, backfill.Errorf(backfill.KindInterrupted, "interrupted while asking Kafka for topic %q metadata", p.topic)
	case r = <-ch:
	}
	brokers := strings.Join(p.cfg.Brokers, ",")
	if r.err != nil {
		if err := p.authFailure(brokers); err != nil {
			return 0, err
		}
		return 0, backfill.Errorf(backfill.KindUnavailable, "cannot reach the Kafka brokers %s within %s: %w; check kafka.brokers, the network path and the security settings", brokers, timeout.Round(time.Millisecond), r.err)
	}
	t, ok := r.md.Topics[p.topic]
	if !ok || t.Error.Code() == ckafka.ErrUnknownTopicOrPart || t.Error.Code() == ckafka.ErrUnknownTopic {
		return 0, backfill.Errorf(backfill.KindContract, "topic %q does not exist on %s: create the stream in ksqlDB first (its CREATE STREAM creates the topic) or fix kafka.topic", p.topic, brokers)
	}
	if t.Error.Code() == ckafka.ErrTopicAuthorizationFailed {
		return 0, p.topicDenied(brokers, t.Error)
	}
	if t.Error.Code() != ckafka.ErrNoError {
		return 0, backfill.Errorf(backfill.KindUnavailable, "metadata for topic %q from %s: %w", p.topic, brokers, t.Error)
	}
	if len(t.Partitions) == 0 {
		return 0, backfill.Errorf(backfill.KindContract, "topic %q on %s has no partitions", p.topic, brokers)
	}
	return len(t.Partitions), nil
}

// Produce enqueues one record. librdkafka copies key and value before
// Produce returns, so the caller may reuse them.
func (p *Producer) Produce(ctx context.Context, key, value []byte) error {
	msg := &ckafka.Message{
		TopicPartition: ckafka.TopicPartition{Topic: &p.topic, Partition: ckafka.PartitionAny},
		Key:            key,
		Value:          value,
		Headers:        p.headers, // librdkafka copies them too
	}
	for {
		if err := p.failure(); err != nil {
			return err
		}
		err := p.p.Produce(msg, nil)
		if err == nil {
			p.produced.Add(1)
			return nil
		}
		var kerr ckafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != ckafka.ErrQueueFull {
			return backfill.Errorf(backfill.KindProduce, "producing to topic %q: %w", p.topic, err)
		}
		// Backpressure: wait for a delivery to free space in the local queue.
		t := time.NewTimer(time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.room:
		case <-t.C:
		}
		t.Stop()
	}
}

// Flush waits until every enqueued record has a delivery report, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	for {
		d := p.Deliveries()
		if d.Undelivered() <= 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%d records unacknowledged: %w", d.Undelivered(), err)
		}
		if p.p.Flush(100) == 0 {
			// librdkafka is empty; wait for the delivery goroutine to count the last reports.
			time.Sleep(time.Millisecond)
		}
	}
}

// Deliveries returns the delivery accounting so far.
func (p *Producer) Deliveries() backfill.Deliveries {
	p.mu.Lock()
	errs := append([]string(nil), p.errs...)
	p.mu.Unlock()
	// Read acked and failed before produced so that Undelivered is never negative.
	acked, failed := p.acked.Load(), p.failed.Load()
	return backfill.Deliveries{Produced: p.produced.Load(), Acked: acked, Failed: failed, Errors: errs}
}

// Written returns the offsets the broker acknowledged, per partition.
func (p *Producer) Written() *backfill.Written { return &p.written }

// requestTimeout bounds a request to the brokers: the connect timeout, or
// ctx's deadline if sooner.
func (p *Producer) requestTimeout(ctx context.Context) time.Duration {
	timeout := p.cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	return timeout
}

// EndOffsets returns each partition's log start and end offsets (the low
// and high watermarks), asking the brokers within the connect timeout (or
// ctx's deadline, if sooner). partitions is the count Partitions returned.
func (p *Producer) EndOffsets(ctx context.Context, partitions int) ([]backfill.Watermarks, error) {
	timeout := p.requestTimeout(ctx)
	type result struct {
		w   []backfill.Watermarks
		err error
	}
	ch := make(chan result, 1)
	p.calls.Add(1) // Close waits for the query: librdkafka's handle must outlive it
	go func() {
		defer p.calls.Done()
		var r result
		for i := range partitions {
			low, high, err := p.p.QueryWatermarkOffsets(p.topic, int32(i), int(timeout/time.Millisecond))
			if err != nil {
				r.err = fmt.Errorf("partition %d: %w", i, err)
				break
			}
			r.w = append(r.w, backfill.Watermarks{Partition: int32(i), Start: low, End: high})
		}
		ch <- r
	}()
	select {
	case <-ctx.Done():
		return nil, backfill.Errorf(backfill.KindInterrupted, "interrupted while reading topic %q's offsets", p.topic)
	case r := <-ch:
		if r.err != nil {
			return nil, backfill.Errorf(backfill.KindUnavailable, "reading topic %q's offsets from %s: %w", p.topic, strings.Join(p.cfg.Brokers, ","), r.err)
		}
		return r.w, nil
	}
}

// closeTimeout bounds Close. librdkafka's destroy purges what is still
// queued, but then waits for its broker threads, which a connection stuck
// in a system call can hold; the job must still write its report and exit.
const closeTimeout = 15 * time.Second

// Close releases the producer. Call Flush first: records still queued are
// lost and show as undelivered. Close returns within closeTimeout even if
// librdkafka does not: it then logs that the client was abandoned, and the
// process's exit releases it.
func (p *Producer) Close() {
	select {
	case <-p.closed:
		return
	default:
	}
	close(p.closed)
	p.tokens.stop() // before p.p.Close: no token may reach a destroyed client
	p.calls.Wait()  // a request abandoned on interruption ends within its timeout
	destroyed := make(chan struct{})
	go func() {
		defer close(destroyed)
		p.destroy()
		p.done.Wait()
	}()
	t := time.NewTimer(p.closeTimeout)
	defer t.Stop()
	select {
	case <-destroyed:
	case <-t.C:
		p.log.Error("the Kafka producer did not close in time; abandoning it (the process exit releases it)",
			"waited", p.closeTimeout, "undelivered", p.Deliveries().Undelivered())
	}
}

// failure returns the error that stops further produce calls: a failed
// delivery or a fatal producer error.
func (p *Producer) failure() error {
	if !p.stopped.Load() {
		return nil
	}
	if p.failed.Load() == 0 {
		p.mu.Lock()
		fatal := p.fatal
		p.mu.Unlock()
		if fatal == nil {
			return nil
		}
		return backfill.Errorf(backfill.KindProduce, "the Kafka producer hit a fatal error: %w", fatal)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return backfill.Errorf(backfill.KindProduce, "a record failed delivery to topic %q: %s", p.topic, p.errs[0])
}

// deliveries counts every delivery report until the producer is closed.
func (p *Producer) deliveries() {
	defer p.done.Done()
	for ev := range p.p.Events() {
		switch e := ev.(type) {
		case *ckafka.Message:
			if e.TopicPartition.Error != nil {
				p.mu.Lock()
				if len(p.errs) < maxDeliveryErrors {
					p.errs = append(p.errs, fmt.Sprintf("partition %d: %v", e.TopicPartition.Partition, e.TopicPartition.Error))
				}
				p.mu.Unlock()
				p.failed.Add(1)
				p.stopped.Store(true)
			} else {
				p.written.Add(e.TopicPartition.Partition, int64(e.TopicPartition.Offset))
				p.acked.Add(1)
			}
			select {
			case p.room <- struct{}{}:
			default:
			}
		case ckafka.Error:
			if e.IsFatal() {
				p.mu.Lock()
				if p.fatal == nil {
					p.fatal = e
				}
				p.mu.Unlock()
				p.stopped.Store(true)
				p.log.Error("kafka fatal error", "code", e.Code().String(), "error", e.Error())
			} else {
				p.noteAuthError(e)
				p.log.Warn("kafka client error", "code", e.Code().String(), "error", e.Error())
			}
		case ckafka.OAuthBearerTokenRefresh:
			p.tokenRefreshEvent()
		}
	}
}

// logs forwards librdkafka's log lines to slog at debug level.
func (p *Producer) logs() {
	defer p.done.Done()
	for {
		select {
		case <-p.closed:
			return
		case l, ok := <-p.p.Logs():
			if !ok {
				return
			}
			p.log.Debug("librdkafka", "tag", l.Tag, "level", l.Level, "message", l.Message)
		}
	}
}
