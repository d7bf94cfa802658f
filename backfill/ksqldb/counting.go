package ksqldb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// The counting pipeline (k8s/ksql-migrations V000006–V000008): the table
// aggregates MIN and COUNT(*) per user and an announcer emits the updates
// whose count is 1. It announces each user once only if the table's query
// forwards every update, i.e. runs with its record cache at 0.

// Settings that decide the counting table query's record cache and
// guarantee.
const (
	// settingCache is the per-query cache (SET 'cache.max.bytes.buffering'
	// in V000006); ksqlDB's server default is 10000000
	// (KsqlConstants.defaultCacheMaxBytesBufferingConfig, v0.29.0), listed
	// by SHOW PROPERTIES as ksql.streams.cache.max.bytes.buffering.
	settingCache = "cache.max.bytes.buffering"
	// settingStateStoreCache is Kafka Streams 3.4+'s replacement; when it
	// is set too, it wins over settingCache
	// (StreamsConfigUtils.getTotalCacheSize, apache/kafka 3.4.0, 3.5.0).
	settingStateStoreCache = "statestore.cache.max.bytes"
	settingGuarantee       = "processing.guarantee"
	streamsPrefix          = "ksql.streams."
	// defaultCache is ksqlDB's cache.max.bytes.buffering default.
	defaultCache = 10000000
)

// countColumn matches COUNT(…) [AS] <name> in a CREATE TABLE … AS SELECT.
var countColumn = regexp.MustCompile("(?i)\\bCOUNT\\s*\\([^)]*\\)\\s+(?:AS\\s+)?(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*)")

// findCountColumn returns the value column of t that the statement
// feeding it computes with COUNT, if any.
func findCountColumn(stmt string, t *sourceDescription) string {
	m := countColumn.FindStringSubmatch(stmt)
	if m == nil {
		return ""
	}
	name := m[1]
	if strings.HasPrefix(name, "`") {
		name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
	} else {
		name = strings.ToUpper(name)
	}
	for _, v := range t.valueFields() {
		if v.Name == name && isIntType(v.Schema.Type) {
			return v.Name
		}
	}
	return ""
}

// checkCountingCache refuses a counting table whose query runs with a
// record cache above 0: two orders of a new user within one commit
// interval would reach the table's topic as one update with count 2, and
// the announcer would never announce that user. It reads the query's SET
// overrides from EXPLAIN (overriddenProperties, QueryDescriptionFactory,
// v0.29.0) and the server's settings from SHOW PROPERTIES; what it cannot
// read it reports in f.Warnings. A query not running exactly-once is a
// warning too.
func (c *Client) checkCountingCache(ctx context.Context, f *Facts, settings map[string]string, add func(string, ...any)) error {
	overrides, err := c.explainOverrides(ctx, f.QueryID)
	if k := backfill.KindOf(err); err != nil {
		if k == backfill.KindUnavailable || k == backfill.KindInterrupted {
			return err
		}
		f.Warnings = append(f.Warnings, fmt.Sprintf("could not read the properties of table %s's query %s (EXPLAIN: %v): check on the server that it runs with %s=0, "+
			"or users ordering twice within one commit interval are never announced", QuoteIdentifier(f.Table), f.QueryID, err, settingCache))
		overrides = nil
	}
	tq := QuoteIdentifier(f.Table)
	if v, ok := settings[streamsPrefix+settingStateStoreCache]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n != 0 {
			add("the server sets %s%s=%s, which overrides the per-query %s=0 of table %s's query %s (Kafka Streams 3.4+ uses %s whenever it is set): "+
				"its record cache would merge a new user's orders within one commit into one update with %s 2, never announced; "+
				"remove the setting or set it to 0 on every ksqlDB server", streamsPrefix, settingStateStoreCache, v, settingCache, tq, f.QueryID, settingStateStoreCache, f.CountColumn)
		}
	} else if f.SettingsUnknown {
		f.Warnings = append(f.Warnings, fmt.Sprintf("SHOW PROPERTIES was refused, so the job cannot tell whether a server-wide %s%s overrides table %s's %s=0",
			streamsPrefix, settingStateStoreCache, tq, settingCache))
	}
	if overrides != nil {
		cache, from := overrides[settingCache], "its SET"
		if cache == "" {
			cache, from = overrides[streamsPrefix+settingCache], "its SET"
		}
		if cache == "" {
			cache, from = settings[streamsPrefix+settingCache], "the server's "+streamsPrefix+settingCache
		}
		if cache == "" {
			cache, from = strconv.Itoa(defaultCache), "ksqlDB's default"
		}
		if n, err := strconv.ParseInt(cache, 10, 64); err != nil || n != 0 {
			add("table %s's query %s runs with %s=%s (%s): its record cache merges a new user's orders within one commit into one update with %s 2, "+
				"and the announcer never announces that user; re-create the table with SET 'cache.max.bytes.buffering'='0' before its CREATE TABLE (k8s/ksql-migrations V000006)",
				tq, f.QueryID, settingCache, cache, from, f.CountColumn)
		}
		g := overrides[settingGuarantee]
		if g == "" {
			g = settings[streamsPrefix+settingGuarantee]
		}
		if !strings.HasPrefix(g, "exactly_once") {
			f.Warnings = append(f.Warnings, fmt.Sprintf("table %s's query %s runs with %s=%s: a crash between its state and output writes can count a record twice, "+
				"and the user is then never announced; V000006 sets exactly_once_v2", tq, f.QueryID, settingGuarantee, orString(g, "at_least_once")))
		}
	}
	return nil
}

// explainOverrides returns a query's overriddenProperties as strings.
func (c *Client) explainOverrides(ctx context.Context, queryID string) (map[string]string, error) {
	out := map[string]string{}
	stmt := "EXPLAIN " + queryID + ";"
	err := c.call(ctx, "/ksql", ksqlRequest{KSQL: stmt, Properties: map[string]any{}}, mediaKsql, func(r io.Reader) error {
		dec := json.NewDecoder(r)
		dec.UseNumber()
		var entities []struct {
			Desc *struct {
				Overridden map[string]any `json:"overriddenProperties"`
			} `json:"queryDescription"`
		}
		if err := dec.Decode(&entities); err != nil {
			return err
		}
		for _, e := range entities {
			if e.Desc != nil {
				for k, v := range e.Desc.Overridden {
					out[k] = fmt.Sprint(v)
				}
				return nil
			}
		}
		return fmt.Errorf("the answer to %s holds no queryDescription", stmt)
	})
	return out, err
}
