package ksqldb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// repartitionSink matches a sink to a repartition topic in a Kafka Streams
// topology description, e.g. "Sink: Aggregate-GroupBy-repartition-sink
// (topic: Aggregate-GroupBy-repartition)": ksqlDB repartitions a GROUP BY
// that is not the stream's key column (SchemaKStream.groupBy,
// repartitionNeeded, v0.15.0-ksqldb to v0.29.0).
var repartitionSink = regexp.MustCompile(`\(topic: ([^)\s]*-repartition)\)`)

// checkRepartition refuses a table query that repartitions: it commits
// the stream topic's offsets once a record reached its repartition topic,
// before the record reaches the table, so the barrier's committed offsets
// on the stream's topic prove nothing about the table. EXPLAIN's topology
// names the repartition topics; a server that refuses EXPLAIN leaves the
// check to Progress, which refuses a repartition topic in the offsets.
func (c *Client) checkRepartition(ctx context.Context, f *Facts, add func(string, ...any)) error {
	topology, err := c.explainTopology(ctx, f.QueryID)
	if k := backfill.KindOf(err); err != nil {
		if k == backfill.KindUnavailable || k == backfill.KindInterrupted {
			return err
		}
		return nil
	}
	for _, m := range repartitionSink.FindAllStringSubmatch(topology, -1) {
		add("%s", repartitionProblem(f, m[1]+" (Kafka topic <the query's application id>-"+m[1]+")"))
	}
	return nil
}

// repartitionProblem explains why a repartitioning table query is refused.
func repartitionProblem(f *Facts, repartitionTopic string) string {
	return fmt.Sprintf("table %s's query %s repartitions before it aggregates, through topic %s: it groups by something other than stream %s's key column %s, "+
		"so its committed offsets on topic %q alone only say that the records reached the repartition topic, not the table, and the job cannot tell when the table holds them; "+
		"create the table with GROUP BY %s, the stream's key column",
		QuoteIdentifier(f.Table), orString(f.QueryID, "?"), repartitionTopic, QuoteIdentifier(f.Stream), orString(f.StreamKeyColumn, "?"), f.Topic, orString(f.StreamKeyColumn, "the key column"))
}

// explainTopology returns EXPLAIN's Kafka Streams topology of a query
// (QueryDescription.topology in ksqldb-rest-model).
func (c *Client) explainTopology(ctx context.Context, queryID string) (string, error) {
	var topology string
	stmt := "EXPLAIN " + queryID + ";"
	err := c.call(ctx, "/ksql", ksqlRequest{KSQL: stmt, Properties: map[string]any{}}, mediaKsql, func(r io.Reader) error {
		var entities []struct {
			Desc *struct {
				Topology string `json:"topology"`
			} `json:"queryDescription"`
		}
		if err := json.NewDecoder(r).Decode(&entities); err != nil {
			return err
		}
		for _, e := range entities {
			if e.Desc != nil {
				topology = e.Desc.Topology
				return nil
			}
		}
		return fmt.Errorf("the answer to %s holds no queryDescription", stmt)
	})
	return topology, err
}

// repartitionTopic returns a repartition topic among a summary's topics.
func repartitionTopic(s queryOffsetSummary) (string, bool) {
	for _, ts := range s.TopicSummaries {
		if strings.HasSuffix(ts.KafkaTopic, "-repartition") {
			return ts.KafkaTopic, true
		}
	}
	return "", false
}
