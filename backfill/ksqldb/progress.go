package ksqldb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// QueryProgress is how far the table's persistent query has read the
// stream's topic, as ksqlDB reports it from the query's consumer group.
type QueryProgress struct {
	Group string // the query's consumer group, _confluent-ksql-<service id><ksql.persistent.prefix><query id>
	// Committed is the committed offset per partition of the stream's
	// topic: every record below it is in the table. A partition the query
	// has not committed on is absent and counts as 0.
	Committed map[int32]int64
}

// queryOffsetSummary is one element of DESCRIBE … EXTENDED's
// queryOffsetSummaries (QueryOffsetSummary, QueryTopicOffsetSummary and
// ConsumerPartitionOffsets in ksqldb-rest-model, since ksqlDB 0.12).
type queryOffsetSummary struct {
	GroupID        string `json:"groupId"`
	TopicSummaries []struct {
		KafkaTopic string `json:"kafkaTopic"`
		Offsets    []struct {
			Partition      int32 `json:"partition"`
			LogStartOffset int64 `json:"logStartOffset"`
			LogEndOffset   int64 `json:"logEndOffset"`
			ConsumerOffset int64 `json:"consumerOffset"`
		} `json:"offsets"`
	} `json:"topicSummaries"`
}

// Progress reads, with DESCRIBE <table> EXTENDED, the committed offsets of
// the persistent query that writes the table (facts.QueryID, from
// Preflight) on the stream's topic. ksqlDB lists one summary per query
// writing the table and, in it, only the topics the query's group has
// committed on, with 0 for a partition not committed yet
// (ListSourceExecutor.queryOffsetSummaries): a missing topic or partition
// is lag, not an error. No summary for the query is a contract error.
func (c *Client) Progress(ctx context.Context, facts Facts) (QueryProgress, error) {
	var qp QueryProgress
	d, err := c.describeStatement(ctx, "DESCRIBE "+QuoteIdentifier(facts.Table)+" EXTENDED;")
	if err != nil {
		return qp, err
	}
	var summaries []queryOffsetSummary
	if len(d.QueryOffsetSummaries) > 0 {
		if err := json.Unmarshal(d.QueryOffsetSummaries, &summaries); err != nil {
			return qp, backfill.Errorf(backfill.KindContract, "ksqlDB's DESCRIBE %s EXTENDED answered queryOffsetSummaries this client cannot read (%w): %s",
				QuoteIdentifier(facts.Table), err, truncate(string(d.QueryOffsetSummaries), 300))
		}
	}
	if len(summaries) == 0 && len(d.warnings) > 0 {
		return qp, offsetsWarning(facts, d.warnings)
	}
	var groups []string
	for _, s := range summaries {
		groups = append(groups, s.GroupID)
		if !queryGroup(s.GroupID, facts.QueryID) {
			continue
		}
		if rt, ok := repartitionTopic(s); ok {
			return qp, backfill.Errorf(backfill.KindContract, "%s", repartitionProblem(&facts, rt))
		}
		qp.Group = s.GroupID
		qp.Committed = map[int32]int64{}
		for _, ts := range s.TopicSummaries {
			if ts.KafkaTopic != facts.Topic {
				continue
			}
			for _, o := range ts.Offsets {
				qp.Committed[o.Partition] = o.ConsumerOffset
			}
		}
		return qp, nil
	}
	if len(summaries) == 0 {
		return qp, backfill.Errorf(backfill.KindContract,
			"ksqlDB reports no persistent query writing table %s (DESCRIBE … EXTENDED has no queryOffsetSummaries): the job cannot tell how far the table has aggregated; "+
				"create the table with CREATE TABLE … AS SELECT … FROM %s (ksqlDB 0.12 or later)", QuoteIdentifier(facts.Table), QuoteIdentifier(facts.Stream))
	}
	return qp, backfill.Errorf(backfill.KindContract,
		"ksqlDB lists no consumer group for query %s, which feeds table %s from %s (groups: %s)",
		facts.QueryID, QuoteIdentifier(facts.Table), QuoteIdentifier(facts.Stream), strings.Join(groups, ", "))
}

// describeStatement runs a DESCRIBE statement and returns its
// sourceDescription.
func (c *Client) describeStatement(ctx context.Context, stmt string) (*sourceDescription, error) {
	var out *sourceDescription
	err := c.call(ctx, "/ksql", ksqlRequest{KSQL: stmt, Properties: map[string]any{}}, mediaKsql, func(r io.Reader) error {
		var entities []json.RawMessage
		if err := json.NewDecoder(r).Decode(&entities); err != nil {
			return err
		}
		for _, raw := range entities {
			var e struct {
				Desc     *sourceDescription `json:"sourceDescription"`
				Warnings []struct {
					Message string `json:"message"`
				} `json:"warnings"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			if e.Desc != nil {
				out = e.Desc
				for _, w := range e.Warnings {
					out.warnings = append(out.warnings, w.Message)
				}
				return nil
			}
			var apiErr APIError
			if json.Unmarshal(raw, &apiErr) == nil && apiErr.Code != 0 {
				return &apiErr
			}
		}
		all, _ := json.Marshal(entities)
		return fmt.Errorf("the answer to %s holds no sourceDescription: %s", stmt, truncate(string(all), 300))
	})
	return out, err
}

// queryGroup reports whether group is query id's consumer group:
// _confluent-ksql-<service id> + ksql.persistent.prefix + query id
// (QueryApplicationId.build, v0.15.0-ksqldb to v0.29.0). The prefix is
// query_ by default but configurable, so only the query id is matched.
func queryGroup(group, id string) bool {
	if id == "" {
		return true
	}
	return strings.HasPrefix(group, "_confluent-ksql-") && strings.HasSuffix(group, id)
}

// offsetsWarning explains an answer without offsets but with warnings:
// 0.15 answers a Kafka failure reading the query's offsets so
// (ListSourceExecutor.describeSource, v0.15.0-ksqldb, catches
// KafkaException). A missing group ACL is named; anything else is
// Kafka being unavailable to ksqlDB, which may pass.
func offsetsWarning(facts Facts, warnings []string) error {
	all := strings.Join(warnings, "; ")
	if group, denied := deniedGroup(all); denied {
		return groupACLError(group, "DESCRIBE "+QuoteIdentifier(facts.Table)+" EXTENDED warned: "+truncate(all, 300))
	}
	return backfill.Errorf(backfill.KindUnavailable,
		"ksqlDB could not read the committed offsets of the query feeding table %s from Kafka: DESCRIBE … EXTENDED answered no offsets and warned %q; "+
			"check the ksqlDB server's connection to Kafka", QuoteIdentifier(facts.Table), truncate(all, 300))
}
