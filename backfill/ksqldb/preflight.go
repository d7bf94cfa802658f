package ksqldb

import (
	"context"
	"fmt"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Expectation is what the job assumes about the ksqlDB objects it feeds.
type Expectation struct {
	Topic string // the topic the job writes to
	// KeyColumn is the stream's key column name, compared
	// case-insensitively; empty accepts any single BIGINT/INT key column.
	KeyColumn string
	// ValueColumn is the stream's value column the mapping fills, e.g.
	// ORDER_ID; empty skips the check.
	ValueColumn string
	// Partitions is the topic's partition count from Kafka metadata; 0
	// means unknown.
	Partitions int
	// KeySubject and ValueSubject are the registry subjects the job took
	// its schemas from; empty skips the check.
	KeySubject, ValueSubject string
	// KeySchemaID is the key schema id the job writes; 0 skips the check
	// against the stream's KEY_SCHEMA_ID.
	KeySchemaID int
}

// Facts are what Preflight read from ksqlDB; Verify needs them.
type Facts struct {
	ServerVersion string // GET /info's version, e.g. 0.29.0 or 7.6.0
	Stream        string // the stream's name as ksqlDB stores it
	Table         string // the table's name as ksqlDB stores it
	Topic         string // the stream's topic
	KeyFormat     string
	ValueFormat   string

	StreamKeyColumn   string // e.g. ACCOUNT_ID
	StreamKeyType     string // BIGINT or INTEGER
	StreamValueColumn string // e.g. ORDER_ID
	TableKeyColumn    string // the table's key column, e.g. ACCOUNT_ID
	TableValueColumn  string // the table's MIN column, e.g. MIN_ORDER_ID
	QueryID           string // the persistent query feeding the table from the stream
	// StreamReaders are the other persistent queries reading the stream,
	// e.g. stream_min_order's: a record sent twice reaches them twice.
	StreamReaders []string
	// AggregatingReaders are the StreamReaders that create tables (CREATE
	// TABLE … AS SELECT from the stream aggregates): a record sent twice
	// leaves their MIN as it was and raises a COUNT.
	AggregatingReaders []string
	// CountColumn is the table's COUNT(*) column when its query counts
	// records per key too, e.g. ORDER_COUNT: the counting pipeline
	// (k8s/ksql-migrations V000006), whose announcer emits count 1. Empty
	// for the join pipeline's MIN-only table.
	CountColumn string
	// Warnings are what preflight could not check and an operator should.
	Warnings []string
	// Partitions is the topic's partition count: from ksqlDB when it
	// reports one, else from the expectation; 0 when neither knows.
	Partitions int
	// StandbyReads: the server lets standbys answer pull queries
	// (ksql.query.pull.enable.standby.reads=true), so every pull query
	// bounds their lag (ksql.query.pull.max.allowed.offset.lag=0) and goes
	// to /query, whose properties the server converts to the setting's type.
	StandbyReads bool
	// SettingsUnknown: the server refused SHOW PROPERTIES.
	SettingsUnknown bool
}

// Preflight checks, before anything is written, that the stream reads the
// job's topic with AVRO keys and values, has one BIGINT/INT key column and
// the expected value column, that the table exists and is fed by a running
// persistent query from that stream, that ksqlDB sees the partition count
// Kafka reports, and that the registry subjects are the ones ksqlDB uses.
// Every mismatch is listed in one KindContract error naming both sides.
func (c *Client) Preflight(ctx context.Context, want Expectation) (Facts, error) {
	var f Facts
	si, err := c.info(ctx)
	if err != nil {
		return f, err
	}
	f.ServerVersion = si.Info.Version

	s, err := c.describe(ctx, "stream", c.stream)
	if err != nil {
		return f, err
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	settings, err := c.checkSettings(ctx, &f, add)
	if err != nil {
		return f, err
	}
	sq := QuoteIdentifier(s.Name)
	f.Stream, f.Topic, f.KeyFormat, f.ValueFormat = s.Name, s.Topic, s.KeyFormat, s.ValueFormat

	if !strings.EqualFold(s.Type, "STREAM") {
		add("%s is a %s in ksqlDB; the job writes to a STREAM", sq, s.Type)
	}
	if want.Topic != "" && s.Topic != want.Topic {
		add("stream %s reads topic %q, but the job writes to topic %q", sq, s.Topic, want.Topic)
	}
	for _, ff := range []struct{ what, got string }{{"key", s.KeyFormat}, {"value", s.ValueFormat}} {
		if !strings.EqualFold(ff.got, "AVRO") {
			got := ff.got
			if got == "" {
				got = "not reported (servers before 0.15 only know KAFKA keys)"
			}
			add("stream %s has %s_format %s, but the job writes Confluent AVRO %ss (%s_format='AVRO')", sq, ff.what, got, ff.what, ff.what)
		}
	}
	if keys := s.keyFields(); len(keys) != 1 {
		add("stream %s has %d key columns (%s); the job writes one BIGINT or INT key", sq, len(keys), s.describeColumns())
	} else {
		k := keys[0]
		f.StreamKeyColumn, f.StreamKeyType = k.Name, k.Schema.Type
		if !isIntType(k.Schema.Type) {
			add("stream %s key column %s is %s; the job writes a BIGINT or INT key", sq, k.Name, k.Schema.Type)
		}
		if want.KeyColumn != "" && !strings.EqualFold(k.Name, want.KeyColumn) {
			add("stream %s key column is %s, but the job expects key column %s", sq, k.Name, want.KeyColumn)
		}
	}
	if want.ValueColumn != "" {
		found := false
		for _, v := range s.valueFields() {
			if strings.EqualFold(v.Name, want.ValueColumn) {
				found, f.StreamValueColumn = true, v.Name
				if !isIntType(v.Schema.Type) {
					add("stream %s value column %s is %s; the job writes a BIGINT", sq, v.Name, v.Schema.Type)
				}
			}
		}
		if !found {
			add("stream %s has no value column %s, which the job fills (columns: %s)", sq, want.ValueColumn, s.describeColumns())
		}
	}
	if strings.EqualFold(s.KeyFormat, "AVRO") && want.KeySubject != "" && want.KeySubject != s.Topic+"-key" {
		add("ksqlDB reads the keys of topic %q with subject %q (topic-name strategy), but the job takes its key schema from subject %q", s.Topic, s.Topic+"-key", want.KeySubject)
	}
	if strings.EqualFold(s.ValueFormat, "AVRO") && want.ValueSubject != "" && want.ValueSubject != s.Topic+"-value" {
		add("ksqlDB reads the values of topic %q with subject %q (topic-name strategy), but the job takes its value schema from subject %q", s.Topic, s.Topic+"-value", want.ValueSubject)
	}
	if id := s.keySchemaID(); id != 0 && want.KeySchemaID != 0 && id != want.KeySchemaID {
		add("stream %s was created with KEY_SCHEMA_ID=%d, so ksqlDB serializes its keys with schema id %d and looks for a user on the partition of those bytes, but the job writes key schema id %d: set schema_registry.key_schema to \"id:%d\"", sq, id, id, want.KeySchemaID, id)
	}
	f.Partitions = want.Partitions
	if s.Partitions > 0 {
		if want.Partitions > 0 && s.Partitions != want.Partitions {
			add("ksqlDB sees %d partitions on topic %q, but Kafka metadata gives the job %d: are the job and ksqlDB using the same Kafka cluster?", s.Partitions, s.Topic, want.Partitions)
		}
		f.Partitions = s.Partitions
	}

	t, err := c.describe(ctx, "table", c.table)
	if err != nil {
		if backfill.KindOf(err) != backfill.KindContract {
			return f, err
		}
		problems = append(problems, err.Error())
	} else {
		c.checkTable(&f, s, t, add)
		if f.QueryID != "" {
			if err := c.checkRepartition(ctx, &f, add); err != nil {
				return f, err
			}
			if f.CountColumn != "" {
				if err := c.checkCountingCache(ctx, &f, settings, add); err != nil {
					return f, err
				}
			}
		}
	}
	if len(problems) > 0 {
		return f, backfill.Errorf(backfill.KindContract, "ksqlDB preflight found %d mismatch(es): %s", len(problems), strings.Join(problems, "; "))
	}
	return f, nil
}

// checkTable checks the table's shape and that a running persistent query
// feeds it from stream s.
func (c *Client) checkTable(f *Facts, s, t *sourceDescription, add func(string, ...any)) {
	tq, sq := QuoteIdentifier(t.Name), QuoteIdentifier(s.Name)
	f.Table = t.Name
	if !strings.EqualFold(t.Type, "TABLE") {
		add("%s is a %s in ksqlDB; the job verifies against a TABLE", tq, t.Type)
	}
	if t.WindowType != nil && *t.WindowType != "" {
		add("table %s is windowed (%s); the job expects a plain aggregate by key", tq, *t.WindowType)
	}
	if keys := t.keyFields(); len(keys) != 1 || !isIntType(keys[0].Schema.Type) {
		add("table %s must have one BIGINT or INT key column, it has: %s", tq, t.describeColumns())
	} else {
		f.TableKeyColumn = keys[0].Name
	}
	for _, q := range t.WriteQueries {
		if f.CountColumn = findCountColumn(q.QueryString, t); f.CountColumn != "" {
			break
		}
	}
	var ints []sourceField // candidates for the MIN column
	for _, v := range t.valueFields() {
		if isIntType(v.Schema.Type) && v.Name != f.CountColumn {
			ints = append(ints, v)
		}
	}
	switch {
	case len(ints) == 1:
		f.TableValueColumn = ints[0].Name
	case len(ints) > 1:
		for _, v := range ints {
			if f.StreamValueColumn != "" && strings.EqualFold(v.Name, "MIN_"+f.StreamValueColumn) {
				f.TableValueColumn = v.Name
			}
		}
		if f.TableValueColumn == "" {
			add("table %s has several BIGINT value columns (%s) and none is named MIN_%s", tq, t.describeColumns(), f.StreamValueColumn)
		}
	default:
		add("table %s has no BIGINT value column to compare with (columns: %s)", tq, t.describeColumns())
	}

	var feeding *runningQuery
	for i := range s.ReadQueries {
		if q := &s.ReadQueries[i]; q.sinks(t.Name) {
			feeding = q
			if q.running() {
				break
			}
		}
	}
	switch {
	case feeding == nil && len(t.WriteQueries) == 0:
		add("table %s is not written by any persistent query (was it created as a source table?); it must be fed by a query reading stream %s", tq, sq)
	case feeding == nil:
		var ws []string
		for _, q := range t.WriteQueries {
			ws = append(ws, fmt.Sprintf("%s: %s", q.id(), truncate(strings.Join(strings.Fields(q.QueryString), " "), 200)))
		}
		add("table %s is not fed by stream %s: no query reading the stream writes the table (queries writing the table: %s)", tq, sq, strings.Join(ws, " | "))
	case !feeding.running():
		add("query %s feeding table %s from stream %s is %s, not RUNNING", feeding.id(), tq, sq, feeding.status())
	default:
		f.QueryID = feeding.id()
	}
	for _, q := range s.ReadQueries {
		if id := q.id(); id != f.QueryID {
			f.StreamReaders = append(f.StreamReaders, id)
			if stmt := strings.ToUpper(strings.Join(strings.Fields(q.QueryString), " ")); strings.HasPrefix(stmt, "CREATE TABLE") {
				f.AggregatingReaders = append(f.AggregatingReaders, id)
			}
		}
	}
}

func isIntType(t string) bool {
	switch strings.ToUpper(t) {
	case "BIGINT", "INTEGER", "INT":
		return true
	}
	return false
}
