package ksqlfake

import (
	"fmt"
	"time"
)

// repartitionSuffix names the topic Kafka Streams creates for a ksqlDB
// GROUP BY that needs one: <application id>-Aggregate-GroupBy-repartition
// (AggregateNode GROUP_BY_OP_NAME "GroupBy" under the "Aggregate" context,
// historical_plans/*group_by*/topology in ksqldb-functional-tests,
// v0.29.0).
const repartitionSuffix = "Aggregate-GroupBy-repartition"

// repartitionState is the repartition topic of a table query grouping by
// something other than the stream's key (Config.Repartition): the first
// sub-topology writes each record there and commits its source offset; the
// second aggregates it RepartitionLag later and commits its own offset.
type repartitionState struct {
	queue     []pendingRecord // written, not yet aggregated (oldest first); offset is the repartition topic's
	end       map[int32]int64 // the topic's end offset per partition
	position  map[int32]int64 // the second sub-topology's position
	committed map[int32]int64
}

func newRepartitionState() repartitionState {
	return repartitionState{end: map[int32]int64{}, position: map[int32]int64{}, committed: map[int32]int64{}}
}

// repartition writes a record the first sub-topology processed to the
// repartition topic. The caller holds s.mu.
func (s *Server) repartition(p pendingRecord, now time.Time) {
	r := &s.repart
	p.offset = r.end[p.partition]
	r.end[p.partition]++
	p.visibleAt = now.Add(s.cfg.RepartitionLag)
	r.queue = append(r.queue, p)
}

// aggregateRepartitioned moves repartitioned records whose lag has passed
// into the table. The caller holds s.mu.
func (s *Server) aggregateRepartitioned(now time.Time) {
	r := &s.repart
	n := 0
	for ; n < len(r.queue) && !r.queue[n].visibleAt.After(now); n++ {
		p := r.queue[n]
		r.position[p.partition] = p.offset + 1
		s.aggregate(p)
	}
	r.queue = r.queue[n:]
}

// repartitionSummary is the repartition topic's entry in the query's
// offset summary, once the group has committed on it; nil before.
func (s *Server) repartitionSummary() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.repart
	if !s.cfg.Repartition || len(r.committed) == 0 {
		return nil
	}
	offsets := make([]any, s.partitions)
	for p := range s.partitions {
		offsets[p] = map[string]any{"partition": p, "logStartOffset": 0, "logEndOffset": r.end[p], "consumerOffset": r.committed[p]}
	}
	return map[string]any{"kafkaTopic": s.queryGroup() + "-" + repartitionSuffix, "offsets": offsets}
}

// topology is EXPLAIN's description of the table query's Kafka Streams
// topology (TopologyDescription's text, as in ksqldb-functional-tests'
// historical_plans/*/topology, v0.29.0): a GROUP BY on the stream's key
// aggregates in one sub-topology; any other writes the repartition topic
// in a first one and aggregates from it in a second.
func (s *Server) topology() string {
	in := fmt.Sprintf("    Source: KSTREAM-SOURCE-0000000000 (topics: [%s])\n", s.cfg.Topic)
	out := fmt.Sprintf("    Sink: KSTREAM-SINK-0000000007 (topic: %s)\n      <-- KTABLE-TOSTREAM-0000000006\n", s.cfg.TableTopic)
	if !s.cfg.Repartition {
		return "Topologies:\n   Sub-topology: 0\n" + in +
			"      --> KSTREAM-AGGREGATE-0000000003\n    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [Aggregate-Aggregate-Materialize])\n" +
			"      --> KTABLE-TOSTREAM-0000000006\n      <-- KSTREAM-SOURCE-0000000000\n" + out
	}
	return "Topologies:\n   Sub-topology: 0\n" + in +
		"      --> Aggregate-GroupBy\n    Processor: Aggregate-GroupBy (stores: [])\n      --> Aggregate-GroupBy-repartition-sink\n" +
		"    Sink: Aggregate-GroupBy-repartition-sink (topic: " + repartitionSuffix + ")\n      <-- Aggregate-GroupBy\n\n" +
		"  Sub-topology: 1\n    Source: Aggregate-GroupBy-repartition-source (topics: [" + repartitionSuffix + "])\n" +
		"      --> KSTREAM-AGGREGATE-0000000005\n    Processor: KSTREAM-AGGREGATE-0000000005 (stores: [Aggregate-Aggregate-Materialize])\n" +
		"      --> KTABLE-TOSTREAM-0000000006\n      <-- Aggregate-GroupBy-repartition-source\n" + out
}
