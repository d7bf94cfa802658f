package ksqlfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultCacheMaxBytes is the record cache ksqlDB gives every query that
// sets none: cache.max.bytes.buffering = 10000000
// (KsqlConstants.defaultCacheMaxBytesBufferingConfig, put in
// KsqlConfig's streams defaults, confluentinc/ksql v0.29.0).
const DefaultCacheMaxBytes = 10_000_000

// PipelineConfig chooses the first-order pipeline a Pipeline runs over
// Kafka: the stages after the stream, as the migrations create them.
type PipelineConfig struct {
	// Counting runs V000006–V000008: table_first_order holds {MIN, COUNT}
	// per key and the announcer emits the updates whose count is 1.
	// Otherwise the join pipeline of V000002–V000003: table_min_order
	// holds MIN per key and stream_min_order announces each order for
	// which the table, as the announcer last read it, has no row or the
	// same minimum.
	Counting bool
	// CacheMaxBytes is the table query's cache.max.bytes.buffering. Above
	// 0, Kafka Streams' record cache (ThreadCache behind
	// CachingKeyValueStore) keeps the latest value per key, and the
	// aggregation forwards it only when the cache is flushed
	// (KStreamAggregate's TimestampedTupleForwarder), which
	// StreamTask.prepareCommit does at each commit
	// (stateMgr.flushCache() before recordCollector.flush(), apache/kafka
	// 3.5.0): one output per changed key per commit. At 0 every record is
	// forwarded: one output per input. The double never evicts (a full
	// cache forwards early: more outputs, not fewer). The migrations give
	// the join table ksqlDB's default (DefaultCacheMaxBytes) and the
	// counting table 0 (V000006).
	CacheMaxBytes int64
	// ExactlyOnce is processing.guarantee=exactly_once_v2 for both
	// stages: each commit writes the stage's outputs in a Kafka
	// transaction that also covers its state and position, its consumers
	// read committed data only (StreamsConfig forces isolation.level
	// read_committed, apache/kafka 3.5.0), and a crash aborts what the
	// commit had written. Otherwise at-least-once: outputs and state are
	// written without a transaction and a restart replays from the last
	// committed position on top of the state as the changelog holds it.
	ExactlyOnce bool
	// TableTopic and AnnounceTopic default to TABLE.MIN_ORDER and
	// STREAM.MIN_ORDER (join) or TABLE.FIRST_ORDER and STREAM.FIRST_ORDER
	// (counting); they are created with the stream's partition count.
	TableTopic, AnnounceTopic string
	// CommitInterval defaults to the Server's (ksqlDB's 2 s).
	CommitInterval time.Duration
}

// Stage names a persistent query of a Pipeline.
type Stage int

const (
	// StageTable is the table's aggregation (CTAS).
	StageTable Stage = iota
	// StageAnnouncer is the announcer (stream_min_order's join, or
	// stream_first_order's filter).
	StageAnnouncer
)

func (st Stage) String() string {
	if st == StageTable {
		return "table"
	}
	return "announcer"
}

// CrashPoint is where in its next commit an injected crash stops a stage.
type CrashPoint int

const (
	// CrashAfterState: the commit wrote the state's changelog, then the
	// process died before writing the outputs and committing.
	CrashAfterState CrashPoint = iota + 1
	// CrashAfterOutput: the commit wrote state and outputs, then the
	// process died before committing the position (and, exactly-once,
	// the transaction).
	CrashAfterOutput
)

func (c CrashPoint) String() string {
	if c == CrashAfterState {
		return "after the state"
	}
	return "after the output"
}

// agg is one key's aggregate.
type agg struct {
	Min   int64 `json:"MIN_ORDER_ID"`
	Count int64 `json:"ORDER_COUNT"`
	null  bool
}

// Pipeline runs the table's query and, once started, the announcer of a
// first-order pipeline against the Server's Kafka topics. It models what
// decides how often a user is announced: the per-key state, the record
// cache, the stages' commits with at-least-once or exactly-once, and
// crashes between a commit's writes. The table topic's records are JSON
// ({"MIN_ORDER_ID":…,"ORDER_COUNT":…}, key the decimal user id), not
// ksqlDB's Avro: only the double reads them. Announcements are JSON as
// V000003/V000008 write them: key the decimal user id, value
// {"FIRST_ORDER":true} (join) or {"FIRST_ORDER_ID":…,"FIRST_ORDER":true}.
type Pipeline struct {
	s      *Server
	cfg    PipelineConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	admin  *kgo.Client

	mu        sync.Mutex
	state     map[int64]agg // the table query's live state
	saved     map[int64]agg // the state as of the last committed transaction
	joinTable map[int64]agg // the join announcer's copy of the table, read from its topic
	stages    [2]*stage
	crashes   atomic.Int64
}

// StartPipeline creates the pipeline's topics and starts the table's
// query, reading the stream from the earliest offset (V000002, V000006).
func (s *Server) StartPipeline(cfg PipelineConfig) (*Pipeline, error) {
	def := func(v *string, join, counting string) {
		if *v == "" {
			*v = join
			if cfg.Counting {
				*v = counting
			}
		}
	}
	def(&cfg.TableTopic, "TABLE.MIN_ORDER", "TABLE.FIRST_ORDER")
	def(&cfg.AnnounceTopic, "STREAM.MIN_ORDER", "STREAM.FIRST_ORDER")
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = s.cfg.CommitInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{s: s, cfg: cfg, ctx: ctx, cancel: cancel, state: map[int64]agg{}, saved: map[int64]agg{}, joinTable: map[int64]agg{}}
	var err error
	if p.admin, err = kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...)); err != nil {
		cancel()
		return nil, fmt.Errorf("ksqldb fake pipeline: %w", err)
	}
	if err := p.createTopics(cfg.TableTopic, cfg.AnnounceTopic); err != nil {
		p.Close()
		return nil, fmt.Errorf("ksqldb fake pipeline: %w", err)
	}
	start := map[string]map[int32]kgo.Offset{s.cfg.Topic: p.at(kgo.NewOffset().AtStart())}
	if err := p.run(StageTable, start, p.applyTable, p.flushTable); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// StartAnnouncer creates the announcer, reading from the latest offset
// (V000003, V000008: auto.offset.reset=latest): the counting announcer
// reads the table's topic; the join announcer reads the stream from the
// latest offset and the table's topic from the earliest (ksqlDB turns on
// topology.optimization, KsqlConfig v0.29.0, so a table source is restored
// from its whole topic).
func (p *Pipeline) StartAnnouncer() error {
	start := map[string]map[int32]kgo.Offset{}
	ends := func(topic string) error {
		o, err := p.endOffsets(topic)
		if err != nil {
			return fmt.Errorf("ksqldb fake pipeline: starting the announcer: %w", err)
		}
		start[topic] = o
		return nil
	}
	if p.cfg.Counting {
		if err := ends(p.cfg.TableTopic); err != nil {
			return err
		}
	} else {
		if err := ends(p.s.cfg.Topic); err != nil {
			return err
		}
		start[p.cfg.TableTopic] = p.at(kgo.NewOffset().AtStart())
	}
	return p.run(StageAnnouncer, start, p.applyAnnouncer, func() []*kgo.Record { return nil })
}

// Close stops both stages.
func (p *Pipeline) Close() {
	p.cancel()
	p.wg.Wait()
	if p.admin != nil {
		p.admin.Close()
	}
}

// State returns the table query's aggregate of key: MIN and COUNT.
func (p *Pipeline) State(key int64) (minimum, count int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.state[key]
	return a.Min, a.Count, ok
}

// CrashNextCommit makes stage crash at point during its next commit that
// has outputs; the stage then restarts from its last committed position.
func (p *Pipeline) CrashNextCommit(st Stage, point CrashPoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if x := p.stages[st]; x != nil {
		x.crash = point
	}
}

// Crashes is how many injected crashes happened.
func (p *Pipeline) Crashes() int { return int(p.crashes.Load()) }

// Committed returns stage's committed position on topic per partition.
func (p *Pipeline) Committed(st Stage, topic string) map[int32]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if x := p.stages[st]; x != nil {
		return maps.Clone(x.committed[topic])
	}
	return nil
}

// at returns offset o for every partition of the stream's count.
func (p *Pipeline) at(o kgo.Offset) map[int32]kgo.Offset {
	out := map[int32]kgo.Offset{}
	for i := range p.s.partitions {
		out[i] = o
	}
	return out
}

func (p *Pipeline) createTopics(topics ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, p.s.partitions, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(p.ctx, p.admin)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, err)
	}
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 && t.ErrorCode != 36 { // 36: TOPIC_ALREADY_EXISTS
			return fmt.Errorf("creating topic %s: error code %d", t.Topic, t.ErrorCode)
		}
	}
	return nil
}

// endOffsets lists topic's end offsets; under exactly-once the last
// stable offsets, as a read_committed consumer starting at latest does.
func (p *Pipeline) endOffsets(topic string) (map[int32]kgo.Offset, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	if p.cfg.ExactlyOnce {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for i := range p.s.partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = i, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(p.ctx, p.admin)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := map[int32]kgo.Offset{}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if rp.ErrorCode != 0 {
				return nil, fmt.Errorf("end offset of %s/%d: error code %d", topic, rp.Partition, rp.ErrorCode)
			}
			out[rp.Partition] = kgo.NewOffset().At(rp.Offset)
		}
	}
	return out, nil
}

// stage is one persistent query: a consumer, a producer and a commit loop.
type stage struct {
	p        *Pipeline
	id       Stage
	start    map[string]map[int32]kgo.Offset
	position map[string]map[int32]int64 // after the last processed record
	// committed is the position of the last commit: where a restart resumes.
	committed map[string]map[int32]int64
	apply     func(*kgo.Record) []*kgo.Record // processes one input; its outputs
	flush     func() []*kgo.Record            // the cache's outputs at a commit
	crash     CrashPoint                      // armed by CrashNextCommit; guarded by p.mu
	dirty     map[int64]int32                 // the cache: keys changed since the last flush, and their partition; guarded by p.mu
	consumer  *kgo.Client
	producer  *kgo.Client
}

func (p *Pipeline) run(id Stage, start map[string]map[int32]kgo.Offset, apply func(*kgo.Record) []*kgo.Record, flush func() []*kgo.Record) error {
	x := &stage{p: p, id: id, start: start, position: map[string]map[int32]int64{}, committed: map[string]map[int32]int64{}, apply: apply, flush: flush}
	opts := []kgo.Opt{kgo.SeedBrokers(p.s.cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if p.cfg.ExactlyOnce {
		opts = append(opts, kgo.TransactionalID(fmt.Sprintf("ksqlfake-%s-%p", id, p)))
	}
	var err error
	if x.producer, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("ksqldb fake pipeline: %s producer: %w", id, err)
	}
	if err := x.connect(); err != nil {
		x.producer.Close()
		return fmt.Errorf("ksqldb fake pipeline: %s consumer: %w", id, err)
	}
	p.mu.Lock()
	p.stages[id] = x
	p.mu.Unlock()
	p.wg.Add(1)
	go x.loop()
	return nil
}

// connect (re)creates the consumer at the committed position, or the
// start offsets where nothing was committed.
func (x *stage) connect() error {
	if x.consumer != nil {
		x.consumer.Close()
	}
	from := map[string]map[int32]kgo.Offset{}
	x.p.mu.Lock()
	for topic, parts := range x.start {
		from[topic] = maps.Clone(parts)
		for part, o := range x.committed[topic] {
			from[topic][part] = kgo.NewOffset().At(o)
		}
	}
	x.position = map[string]map[int32]int64{}
	x.p.mu.Unlock()
	opts := []kgo.Opt{kgo.SeedBrokers(x.p.s.cfg.Brokers...), kgo.FetchMaxWait(50 * time.Millisecond), kgo.ConsumePartitions(from)}
	if x.p.cfg.ExactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	var err error
	x.consumer, err = kgo.NewClient(opts...)
	return err
}

// loop processes what it fetches and commits every CommitInterval.
func (x *stage) loop() {
	defer x.p.wg.Done()
	defer func() {
		x.consumer.Close()
		x.producer.Close()
	}()
	var outs []*kgo.Record
	last := time.Now()
	for x.p.ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(x.p.ctx, 20*time.Millisecond)
		fs := x.consumer.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			x.p.mu.Lock()
			if x.position[r.Topic] == nil {
				x.position[r.Topic] = map[int32]int64{}
			}
			x.position[r.Topic][r.Partition] = r.Offset + 1
			x.p.mu.Unlock()
			outs = append(outs, x.apply(r)...)
		})
		if time.Since(last) < x.p.cfg.CommitInterval {
			continue
		}
		last = time.Now()
		outs = append(outs, x.flush()...)
		if err := x.commit(outs); err != nil && x.p.ctx.Err() == nil {
			// A crash (injected) or a failed write: restart from the last commit.
			x.restart()
		}
		outs = nil
	}
}

var errCrashed = errors.New("crashed")

// commit writes the outputs and commits the position: in one transaction
// under exactly-once, else output first, then position. An armed crash
// stops it at its point.
func (x *stage) commit(outs []*kgo.Record) error {
	p := x.p
	p.mu.Lock()
	crash := x.crash
	if len(outs) == 0 {
		crash = 0 // a crash only where it can lose or repeat something
	}
	if crash != 0 {
		x.crash = 0
	}
	p.mu.Unlock()
	if p.cfg.ExactlyOnce {
		if err := x.producer.BeginTransaction(); err != nil {
			return err
		}
	}
	if crash == CrashAfterState {
		return x.die()
	}
	if len(outs) > 0 {
		if err := x.producer.ProduceSync(p.ctx, outs...).FirstErr(); err != nil {
			return x.abort(err)
		}
	}
	if crash == CrashAfterOutput {
		return x.die()
	}
	if p.cfg.ExactlyOnce {
		if err := x.producer.EndTransaction(p.ctx, kgo.TryCommit); err != nil {
			return x.abort(err)
		}
	}
	p.mu.Lock()
	for topic, parts := range x.position {
		if x.committed[topic] == nil {
			x.committed[topic] = map[int32]int64{}
		}
		maps.Copy(x.committed[topic], parts)
	}
	if x.id == StageTable {
		p.saved = maps.Clone(p.state)
	}
	p.mu.Unlock()
	return nil
}

// die ends the stage as a crash does: under exactly-once its open
// transaction is aborted, as the restarted instance's InitProducerId has
// the coordinator abort an Ongoing one (TransactionCoordinator
// handleInitProducerId, apache/kafka 3.5.0), and its state rolls back to
// the last commit, what a read_committed restore of the changelog holds;
// under at-least-once the state stays as the changelog holds it, the
// crashed commit's updates included.
func (x *stage) die() error {
	x.p.crashes.Add(1)
	return x.abort(errCrashed)
}

func (x *stage) abort(cause error) error {
	p := x.p
	if p.cfg.ExactlyOnce {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = x.producer.AbortBufferedRecords(ctx)
		_ = x.producer.EndTransaction(ctx, kgo.TryAbort)
		cancel()
		if x.id == StageTable {
			p.mu.Lock()
			p.state = maps.Clone(p.saved)
			p.mu.Unlock()
		}
	}
	return cause
}

// restart resumes from the last committed position. The join announcer
// rebuilds its copy of the table from the table topic's committed
// position, so it keeps the copy; the cache's unflushed entries are lost
// with the process.
func (x *stage) restart() {
	for x.p.ctx.Err() == nil {
		if err := x.connect(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// applyTable is the table's aggregation: MIN and COUNT of each decoded
// record's value per key (COUNT(*) counts rows, NULL values included;
// MIN ignores NULLs). With the cache off it forwards every update.
func (p *Pipeline) applyTable(r *kgo.Record) []*kgo.Record {
	key, ok := p.s.decodeKey(r.Key)
	if !ok {
		return nil
	}
	v, ok := p.s.decodeValue(r.Value)
	if !ok {
		return nil
	}
	p.mu.Lock()
	a, seen := p.state[key]
	switch {
	case !seen:
		a = agg{Min: v.value, null: v.null}
	case a.null && !v.null, !v.null && v.value < a.Min:
		a.Min, a.null = v.value, false
	}
	a.Count++
	p.state[key] = a
	if p.cfg.CacheMaxBytes > 0 {
		p.dirty(key, r.Partition)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	return []*kgo.Record{p.tableRecord(key, a, r.Partition)}
}

// dirty marks key for the next flush. The caller holds p.mu.
func (p *Pipeline) dirty(key int64, partition int32) {
	x := p.stages[StageTable]
	if x == nil {
		return
	}
	if x.dirty == nil {
		x.dirty = map[int64]int32{}
	}
	x.dirty[key] = partition
}

// flushTable forwards the latest value of every key changed since the
// last commit, as a flushed record cache does.
func (p *Pipeline) flushTable() []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.stages[StageTable]
	if x == nil || len(x.dirty) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(x.dirty))
	out := make([]*kgo.Record, 0, len(keys))
	for _, k := range keys {
		out = append(out, p.tableRecord(k, p.state[k], x.dirty[k]))
	}
	x.dirty = nil
	return out
}

func (p *Pipeline) tableRecord(key int64, a agg, partition int32) *kgo.Record {
	v, _ := json.Marshal(a)
	return &kgo.Record{Topic: p.cfg.TableTopic, Partition: partition, Key: []byte(strconv.FormatInt(key, 10)), Value: v}
}

// applyAnnouncer is stream_first_order's filter (count 1) or
// stream_min_order's join (no row, or the same minimum).
func (p *Pipeline) applyAnnouncer(r *kgo.Record) []*kgo.Record {
	if r.Topic == p.cfg.TableTopic {
		key, err := strconv.ParseInt(string(r.Key), 10, 64)
		var a agg
		if err != nil || json.Unmarshal(r.Value, &a) != nil {
			return nil
		}
		if p.cfg.Counting {
			if a.Count != 1 {
				return nil
			}
			v, _ := json.Marshal(map[string]any{"FIRST_ORDER_ID": a.Min, "FIRST_ORDER": true})
			return []*kgo.Record{{Topic: p.cfg.AnnounceTopic, Partition: r.Partition, Key: r.Key, Value: v}}
		}
		p.mu.Lock()
		p.joinTable[key] = a
		p.mu.Unlock()
		return nil
	}
	key, ok := p.s.decodeKey(r.Key)
	if !ok {
		return nil
	}
	v, ok := p.s.decodeValue(r.Value)
	if !ok {
		return nil
	}
	p.mu.Lock()
	row, found := p.joinTable[key]
	p.mu.Unlock()
	if found && (row.null || v.null || row.Min != v.value) {
		return nil
	}
	return []*kgo.Record{{Topic: p.cfg.AnnounceTopic, Partition: r.Partition, Key: []byte(strconv.FormatInt(key, 10)), Value: []byte(`{"FIRST_ORDER":true}`)}}
}
