package ksqlfake

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
)

// startConsumer learns the topic's partitions, finds the start offsets and
// starts the table's query: a consumer that feeds the table.
func (s *Server) startConsumer(ctx context.Context) error {
	kc, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...))
	if err != nil {
		return err
	}
	s.admin = kc
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(s.cfg.Topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(mctx, kc)
	if err != nil {
		return fmt.Errorf("metadata for topic %q: %w", s.cfg.Topic, err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 || len(mresp.Topics[0].Partitions) == 0 {
		return fmt.Errorf("topic %q does not exist", s.cfg.Topic)
	}
	s.partitions = int32(len(mresp.Topics[0].Partitions))
	s.table = make([]map[int64]cell, s.partitions)
	for i := range s.table {
		s.table[i] = map[int64]cell{}
	}
	if !s.fed() {
		close(s.stopped)
		close(s.processing)
		return nil
	}

	start := make(map[int32]kgo.Offset, s.partitions)
	for p := range s.partitions {
		start[p] = kgo.NewOffset().AtStart()
	}
	if s.cfg.OffsetReset == "latest" {
		ends, err := s.listOffsets(mctx, -1)
		if err != nil {
			return err
		}
		for p, o := range ends {
			start[p] = kgo.NewOffset().At(o)
		}
	}
	// Control records (transaction markers) are kept: they move the
	// consumer's position, which Kafka Streams may commit (see process).
	if s.kc, err = kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...), kgo.FetchMaxWait(100*time.Millisecond), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topic: start})); err != nil {
		return err
	}
	go s.consume(ctx)
	go s.process(ctx)
	return nil
}

// listOffsets returns every partition's earliest (ts -2) or latest (ts
// -1) offset, as the admin client's listOffsets does for ksqlDB.
func (s *Server) listOffsets(ctx context.Context, ts int64) (map[int32]int64, error) {
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = s.cfg.Topic
	for p := range s.partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, ts
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, s.admin)
	if err != nil {
		return nil, fmt.Errorf("offsets of %q: %w", s.cfg.Topic, err)
	}
	out := make(map[int32]int64, s.partitions)
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return nil, fmt.Errorf("offset of %s/%d: error code %d", t.Topic, p.Partition, p.ErrorCode)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}

// consume fetches records and queues them for the query's processing
// loop until ctx ends.
func (s *Server) consume(ctx context.Context) {
	defer close(s.stopped)
	for {
		fs := s.kc.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) { s.ingest(r, now) })
	}
}

// ingest decodes one record as ksqlDB's stream would and queues it; a
// record it cannot decode is queued too, since it still advances the
// query's position, and is dropped when processed.
func (s *Server) ingest(r *kgo.Record, now time.Time) {
	p := pendingRecord{partition: r.Partition, offset: r.Offset, visibleAt: now.Add(s.cfg.Lag)}
	if r.Attrs.IsControl() {
		p.control = true
		s.mu.Lock()
		s.pending = append(s.pending, p)
		s.mu.Unlock()
		return
	}
	var ok bool
	if p.key, ok = s.decodeKey(r.Key); ok {
		p.value, p.decoded = s.decodeValue(r.Value)
	}
	s.mu.Lock()
	s.pending = append(s.pending, p)
	s.mu.Unlock()
	s.fetched.Add(1)
}

// schemaRef is a writer schema id as registered under a subject.
type schemaRef struct {
	subject string
	id      int
}

// writerSchema returns the schema a wire-format payload names, if that
// id is registered under subject. ksqlDB reads Avro through Connect's
// AvroConverter, which asks the registry for the writer schema's version
// under the record's subject (AbstractKafkaAvroDeserializer's
// schemaVersion, getVersion(subject, schema)); an id the subject does not
// hold fails deserialization, and ksqlDB drops the record.
func (s *Server) writerSchema(b []byte, subject string) (avro.Schema, []byte, bool) {
	if len(b) < 5 || b[0] != 0 {
		return nil, nil, false
	}
	ref := schemaRef{subject, int(binary.BigEndian.Uint32(b[1:5]))}
	s.mu.Lock()
	sc, ok := s.schemas[ref]
	s.mu.Unlock()
	if !ok {
		if !s.cfg.Registry.SubjectHolds(subject, ref.id) {
			return nil, nil, false
		}
		text, found := s.cfg.Registry.SchemaByID(ref.id)
		if !found {
			return nil, nil, false
		}
		parsed, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, nil, false
		}
		s.mu.Lock()
		s.schemas[ref] = parsed
		s.mu.Unlock()
		sc = parsed
	}
	return sc, b[5:], true
}

// decode reads an Avro body strictly: running out of bytes is an error.
func decode(sc avro.Schema, body []byte) (any, bool) {
	r := avro.NewReader(nil, 0)
	r.Reset(body)
	var v any
	r.ReadVal(sc, &v)
	return v, r.Error == nil
}

// decodeKey resolves the writer's key into ksqlDB's BIGINT/INT key.
func (s *Server) decodeKey(b []byte) (int64, bool) {
	sc, body, ok := s.writerSchema(b, s.cfg.Topic+"-key")
	if !ok {
		return 0, false
	}
	v, ok := decode(sc, body)
	if !ok {
		return 0, false
	}
	return asInt64(v)
}

// decodeValue resolves the writer's value record into the value column,
// matching field names case-insensitively; a missing field reads as NULL.
func (s *Server) decodeValue(b []byte) (cell, bool) {
	if b == nil {
		return cell{}, false // a tombstone: streams skip it
	}
	sc, body, ok := s.writerSchema(b, s.cfg.Topic+"-value")
	if !ok || sc.Type() != avro.Record {
		return cell{}, false
	}
	v, ok := decode(sc, body)
	if !ok {
		return cell{}, false
	}
	rec, ok := v.(map[string]any)
	if !ok {
		return cell{}, false
	}
	for name, fv := range rec {
		if strings.EqualFold(name, s.cfg.ValueColumn) {
			if fv == nil {
				return cell{null: true}, true
			}
			n, ok := asInt64(fv)
			return cell{value: n}, ok
		}
	}
	return cell{null: true}, true
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	}
	return 0, false
}

// process is the table's persistent query: it applies queued records to
// the table at most Rate per second once their Lag has passed, and commits
// its position every CommitInterval, as Kafka Streams does for a ksqlDB
// query (ksqlDB sets commit.interval.ms to KsqlConstants.defaultCommitIntervalMsConfig, 2000, in KsqlConfig.java,
// confluentinc/ksql v0.29.0). Pull queries read the table, so they see a
// record once it is processed; DESCRIBE … EXTENDED reports the committed
// positions. The position committed is the consumer's, past any
// transaction marker read (apache/kafka#8040, Kafka 2.5); with
// Profile.CommitOnlyAfterRecord a partition is committed only if a record
// was processed on it since its last commit (StreamTask.commitNeeded
// before apache/kafka#11151), so a trailing marker stays uncommitted.
func (s *Server) process(ctx context.Context) {
	defer close(s.processing)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last, lastCommit := time.Now(), time.Now()
	budget := 0.0
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		s.mu.Lock()
		limit := len(s.pending)
		switch {
		case s.paused:
			budget, limit = 0, 0
		case s.cfg.Rate > 0:
			// A token bucket holding at most a tenth of a second's records.
			budget = min(budget+float64(s.cfg.Rate)*now.Sub(last).Seconds(), max(float64(s.cfg.Rate)/10, 1))
			limit = min(limit, int(budget))
		}
		budget -= float64(s.applyVisible(now, limit))
		s.aggregateRepartitioned(now)
		last = now
		if now.Sub(lastCommit) >= s.cfg.CommitInterval {
			maps.Copy(s.repart.committed, s.repart.position)
			for p, pos := range s.position {
				if s.commitNeeded[p] || !s.prof.CommitOnlyAfterRecord {
					s.committed[p] = pos
				}
				delete(s.commitNeeded, p)
			}
			lastCommit = now
		}
		s.mu.Unlock()
	}
}

// applyVisible moves at most limit queued records whose lag has passed
// into the table, advances the query's position past each, and returns how
// many it moved. The caller holds s.mu.
func (s *Server) applyVisible(now time.Time, limit int) int {
	n := 0
	for ; n < limit && n < len(s.pending) && !s.pending[n].visibleAt.After(now); n++ {
		p := s.pending[n]
		s.position[p.partition] = p.offset + 1
		if p.control {
			continue // a transaction marker: nothing to process
		}
		s.commitNeeded[p.partition] = true
		if !p.decoded {
			s.dropped.Add(1)
			continue
		}
		if s.cfg.Repartition {
			s.repartition(p, now)
			continue
		}
		s.aggregate(p)
	}
	s.pending = s.pending[n:]
	return n
}

// keySerializer returns how ksqlDB serializes a key for pull-query
// routing: with its own key serializer, which auto-registers the schema
// of the key column's type ("long" for BIGINT) under <topic>-key and
// writes that schema's id, whatever the subject's latest version is
// (KsqlAvroSerdeFactory and KeyedTableLookup's key serde; see
// ksqldb-contract "Pull-query keys"). KeySchemaID, when set, stands for
// that id.
func (s *Server) keySerializer(ctx context.Context) (func(int64) ([]byte, error), error) {
	id := s.cfg.KeySchemaID
	if id == 0 {
		var err error
		if id, err = s.ownKeyID(ctx); err != nil {
			return nil, err
		}
	}
	text, ok := s.cfg.Registry.SchemaByID(id)
	if !ok {
		return nil, fmt.Errorf("key schema id %d is not in the registry", id)
	}
	sc, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	return func(k int64) ([]byte, error) {
		out := []byte{0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[1:], uint32(id))
		var v any = k
		if sc.Type() == avro.Int {
			v = int32(k)
		}
		body, err := avro.Marshal(sc, v)
		if err != nil {
			return nil, err
		}
		return append(out, body...), nil
	}, nil
}

// ownKeyID registers the key column's schema under <topic>-key, as an
// auto-registering serializer does, and returns its id: the registry
// answers the existing id when the subject already holds the schema.
func (s *Server) ownKeyID(ctx context.Context) (int, error) {
	schema := `"long"`
	if strings.EqualFold(s.cfg.KeyType, "INTEGER") || strings.EqualFold(s.cfg.KeyType, "INT") {
		schema = `"int"`
	}
	body, _ := json.Marshal(map[string]string{"schema": schema})
	u := strings.TrimRight(s.cfg.RegistryURL, "/") + "/subjects/" + url.PathEscape(s.cfg.Topic+"-key") + "/versions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		ID int `json:"id"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("registry answered %s registering the key schema under %s-key", resp.Status, s.cfg.Topic)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, err
	}
	return v.ID, nil
}

// lookup returns the table's rows for keys, each looked up only in the
// partition ksqlDB routes it to.
func (s *Server) lookup(ctx context.Context, keys []int64) ([][]any, error) {
	ser, err := s.keySerializer(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows [][]any
	seen := map[int64]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		b, err := ser(k)
		if err != nil {
			return nil, err
		}
		c, ok := s.table[murmur2.Partition(b, s.partitions)][k]
		if !ok {
			continue
		}
		rows = append(rows, s.row(k, c))
	}
	return rows, nil
}

// scan returns up to limit rows of the table (all when limit is 0), as a
// table scan does.
func (s *Server) scan(limit int64) [][]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows [][]any
	for _, part := range s.table {
		for k, c := range part {
			if limit > 0 && int64(len(rows)) >= limit {
				return rows
			}
			rows = append(rows, s.row(k, c))
		}
	}
	return rows
}

// aggregate applies one decoded record to the table: MIN of the values
// (NULLs ignored) and COUNT(*) of the records. The caller holds s.mu.
func (s *Server) aggregate(p pendingRecord) {
	part := s.table[p.partition]
	old, ok := part[p.key]
	next := old
	switch {
	case !ok, old.null && !p.value.null:
		next.value, next.null = p.value.value, p.value.null
	case !p.value.null && p.value.value < old.value:
		next.value = p.value.value
	}
	next.count = old.count + 1
	part[p.key] = next
	s.processed.Add(1)
}

// row is a table row as pull queries return it: key, MIN and, for a
// counting table (Config.CountColumn), COUNT.
func (s *Server) row(k int64, c cell) []any {
	var v any = json.Number(fmt.Sprint(c.value))
	if c.null {
		v = nil
	}
	r := []any{json.Number(fmt.Sprint(k)), v}
	if s.cfg.CountColumn != "" {
		r = append(r, json.Number(fmt.Sprint(c.count)))
	}
	return r
}
