package ksqlfake

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
)

const delimited = "application/vnd.ksqlapi.delimited.v1"

// serviceID is ksql.service.id's default.
const serviceID = "default_"

// writeError answers with ksqlDB's error JSON.
func writeError(w http.ResponseWriter, status int, typ string, code int, msg, stmt string) {
	body := map[string]any{"@type": typ, "error_code": code, "message": msg}
	if typ == "statement_error" {
		body["statementText"] = stmt
		body["entities"] = []any{}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func statementError(w http.ResponseWriter, msg, stmt string) {
	writeError(w, http.StatusBadRequest, "statement_error", 40001, msg, stmt)
}

func (s *Server) handleInfo(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{"KsqlServerInfo": map[string]any{
		"version": s.cfg.Version, "kafkaClusterId": "fake-cluster", "ksqlServiceId": serviceID, "serverStatus": "RUNNING",
	}})
}

// handleKsql answers POST /ksql: DESCRIBE, SHOW PROPERTIES and EXPLAIN.
func (s *Server) handleKsql(w http.ResponseWriter, r *http.Request) {
	var req struct {
		KSQL string `json:"ksql"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.KSQL == "" {
		writeError(w, http.StatusBadRequest, "generic_error", 40000, "Invalid request body: a JSON object with ksql is required", "")
		return
	}
	st, err := parse(req.KSQL)
	if err != nil {
		statementError(w, err.Error(), req.KSQL)
		return
	}
	switch x := st.(type) {
	case *showPropsStmt:
		s.handleShowProperties(w, req.KSQL)
		return
	case *explainStmt:
		s.handleExplain(w, resolve(x.query), req.KSQL)
		return
	}
	d, ok := st.(*describeStmt)
	if !ok {
		statementError(w, "this double answers only DESCRIBE on /ksql; pull queries go to /query", req.KSQL)
		return
	}
	name := resolve(d.source)
	var desc map[string]any
	warnings := []any{}
	switch {
	case name == s.cfg.Stream:
		desc = s.describeStream(d.extended)
	case name == s.cfg.Table && !s.cfg.NoTable:
		var err error
		if desc, err = s.describeTable(r.Context(), d.extended); err != nil {
			writeError(w, http.StatusInternalServerError, "generic_error", 50000, "Error from Kafka: "+err.Error(), "")
			return
		}
		if msg, failed := s.offsetsFault(); failed && d.extended {
			if !s.prof.OffsetErrorsAsWarnings {
				writeError(w, http.StatusInternalServerError, "statement_error", 50000, msg, req.KSQL)
				return
			}
			desc["queryOffsetSummaries"] = []any{}
			warnings = append(warnings, map[string]any{"message": "Error from Kafka: " + msg})
		}
	default:
		statementError(w, fmt.Sprintf("Could not find STREAM/TABLE '%s' in the Metastore", name), req.KSQL)
		return
	}
	writeJSON(w, http.StatusOK, []any{map[string]any{
		"@type": "sourceDescription", "statementText": req.KSQL, "sourceDescription": desc, "warnings": warnings,
	}})
}

func field(name, typ string, key bool) map[string]any {
	f := map[string]any{"name": name, "schema": map[string]any{"type": typ, "fields": nil, "memberSchema": nil}}
	if key {
		f["type"] = "KEY"
	}
	return f
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// tableQueryID is the id of the persistent query writing the table.
func (s *Server) tableQueryID() string { return "CTAS_" + strings.ToUpper(s.cfg.Table) + "_1" }

// queryGroup is the table query's consumer group, its application id:
// _confluent-ksql-<service id><ksql.persistent.prefix><query id>
// (QueryApplicationId.build, v0.15.0-ksqldb to v0.29.0).
func (s *Server) queryGroup() string {
	return "_confluent-ksql-" + serviceID + s.cfg.PersistentPrefix + s.tableQueryID()
}

// tableQuery is the persistent query writing the table, as DESCRIBE lists it.
func (s *Server) tableQuery() map[string]any {
	c := s.cfg
	groupBy := quote(c.KeyColumn)
	if c.Repartition {
		groupBy = "CAST(" + quote(c.KeyColumn) + " AS BIGINT)" // not the key column itself: repartitions
	}
	count := ""
	if c.CountColumn != "" {
		count = ", COUNT(*) " + quote(c.CountColumn)
	}
	return map[string]any{
		"queryString": fmt.Sprintf("CREATE TABLE %s WITH (KAFKA_TOPIC='%s', KEY_FORMAT='AVRO', VALUE_FORMAT='AVRO') AS SELECT %s, MIN(%s) %s%s FROM %s GROUP BY %s EMIT CHANGES;",
			quote(c.Table), c.TableTopic, quote(c.KeyColumn), quote(c.ValueColumn), quote(c.MinColumn), count, quote(c.TableSource), groupBy),
		"sinks":           []string{c.Table},
		"sinkKafkaTopics": []string{c.TableTopic},
		"id":              s.tableQueryID(),
		"statusCount":     map[string]int{c.QueryState: 1},
		"queryType":       "PERSISTENT",
		"state":           c.QueryState,
	}
}

func (s *Server) source(name, typ, topic string, ext bool, fields, reads, writes []map[string]any, stmt string) map[string]any {
	partitions := s.partitions
	if !ext && !s.prof.DescribePartitions {
		partitions = 0
	}
	return map[string]any{
		"name": name, "windowType": nil, "readQueries": reads, "writeQueries": writes, "fields": fields,
		"type": typ, "timestamp": "", "statistics": "", "errorStats": "", "extended": ext,
		"keyFormat": s.cfg.KeyFormat, "valueFormat": s.cfg.ValueFormat, "topic": topic,
		"partitions": partitions, "replication": 1, "statement": stmt,
		"queryOffsetSummaries": []any{}, "sourceConstraints": []any{}, "clusterStatistics": []any{}, "clusterErrorStats": []any{},
	}
}

func (s *Server) describeStream(ext bool) map[string]any {
	c := s.cfg
	reads := []map[string]any{}
	if !c.NoTable && c.TableSource == c.Stream {
		reads = append(reads, s.tableQuery())
	}
	for _, id := range c.OtherReaders {
		reads = append(reads, map[string]any{
			"queryString": "CREATE STREAM … AS SELECT … FROM " + quote(c.Stream) + " …;", "sinks": []string{id}, "sinkKafkaTopics": []string{id},
			"id": id, "statusCount": map[string]int{"RUNNING": 1}, "queryType": "PERSISTENT", "state": "RUNNING",
		})
	}
	props := ""
	if c.StreamKeySchemaID != 0 {
		props = fmt.Sprintf(", KEY_SCHEMA_ID=%d", c.StreamKeySchemaID)
	}
	stmt := fmt.Sprintf("CREATE STREAM %s (%s %s KEY, %s BIGINT) WITH (KAFKA_TOPIC='%s', KEY_FORMAT='%s', VALUE_FORMAT='%s'%s);",
		quote(c.Stream), quote(c.KeyColumn), c.KeyType, quote(c.ValueColumn), c.Topic, c.KeyFormat, c.ValueFormat, props)
	return s.source(c.Stream, "STREAM", c.Topic, ext,
		[]map[string]any{field(c.KeyColumn, c.KeyType, true), field(c.ValueColumn, "BIGINT", false)},
		reads, []map[string]any{}, stmt)
}

func (s *Server) describeTable(ctx context.Context, ext bool) (map[string]any, error) {
	c := s.cfg
	q := s.tableQuery()
	fields := []map[string]any{field(c.KeyColumn, c.KeyType, true), field(c.MinColumn, "BIGINT", false)}
	if c.CountColumn != "" {
		fields = append(fields, field(c.CountColumn, "BIGINT", false))
	}
	d := s.source(c.Table, "TABLE", c.TableTopic, ext, fields,
		[]map[string]any{}, []map[string]any{q}, q["queryString"].(string))
	if ext {
		sum, err := s.queryOffsetSummary(ctx)
		if err != nil {
			return nil, err
		}
		d["queryOffsetSummaries"] = []any{sum}
	}
	return d, nil
}

// queryOffsetSummary is what DESCRIBE … EXTENDED reports for the table's
// query (ListSourceExecutor.queryOffsetSummaries, confluentinc/ksql
// v0.29.0; QueryOffsetSummary, QueryTopicOffsetSummary and
// ConsumerPartitionOffsets in ksqldb-rest-model): one summary per query
// writing the source, named by its consumer group
// (_confluent-ksql-<service id>query_<query id>, QueryApplicationId); a
// topic appears only once the group has committed an offset on it, and
// then lists every partition, with consumerOffset 0 for a partition it has
// not committed yet.
func (s *Server) queryOffsetSummary(ctx context.Context) (map[string]any, error) {
	topics := []any{}
	committed := s.Committed()
	if len(committed) > 0 && !s.cfg.SharedRuntime {
		starts, err := s.listOffsets(ctx, -2)
		if err != nil {
			return nil, err
		}
		ends, err := s.listOffsets(ctx, -1)
		if err != nil {
			return nil, err
		}
		offsets := make([]any, s.partitions)
		for p := range s.partitions {
			offsets[p] = map[string]any{"partition": p, "logStartOffset": starts[p], "logEndOffset": ends[p], "consumerOffset": committed[p]}
		}
		topics = append(topics, map[string]any{"kafkaTopic": s.cfg.Topic, "offsets": offsets})
		if r := s.repartitionSummary(); r != nil {
			topics = append(topics, r)
		}
	}
	return map[string]any{"groupId": s.queryGroup(), "topicSummaries": topics}, nil
}

// pullQuery parses and runs a pull query; on failure it has answered.
func (s *Server) pullQuery(w http.ResponseWriter, r *http.Request, stmt string, props map[string]any) ([][]any, bool) {
	st, err := parse(stmt)
	if err != nil {
		statementError(w, err.Error(), stmt)
		return nil, false
	}
	q, ok := st.(*pullStmt)
	if !ok {
		statementError(w, "only pull queries (SELECT) are answered here", stmt)
		return nil, false
	}
	switch name := resolve(q.source); {
	case name == s.cfg.Stream:
		statementError(w, "this double answers pull queries on the table only, not on stream "+name, stmt)
		return nil, false
	case name != s.cfg.Table || s.cfg.NoTable:
		statementError(w, fmt.Sprintf("Exception while preparing statement: %s does not exist.", name), stmt)
		return nil, false
	}
	if q.hasLimit && !s.prof.PullLimit {
		statementError(w, msgPullLimit, stmt)
		return nil, false
	}
	if q.scan {
		if !s.prof.TableScans {
			statementError(w, msgTableScan, stmt)
			return nil, false
		}
		if s.servedByStandby(props) {
			return nil, true
		}
		return s.scan(q.limit), true
	}
	if col := resolve(q.column); col != s.cfg.KeyColumn {
		statementError(w, fmt.Sprintf("WHERE clause on column %s is not a key lookup: the key column of %s is %s", col, s.cfg.Table, s.cfg.KeyColumn), stmt)
		return nil, false
	}
	if s.servedByStandby(props) {
		return nil, true // the standby's store has replicated nothing
	}
	rows, err := s.lookup(r.Context(), q.keys)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generic_error", 50000, "serializing the key: "+err.Error(), "")
		return nil, false
	}
	return rows, true
}

func (s *Server) newQueryID() string {
	return "query_" + strconv.FormatInt(1700000000000+s.queries.Add(1), 10)
}

// handleQuery answers POST /query with one JSON array: the header, then
// one object per row.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 && s.prof.QueryRefusedOverHTTP2 {
		// An empty body: the reason, "The /query endpoint is not available
		// using HTTP2", goes in the status line, which HTTP/2 lacks.
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		KSQL  string         `json:"ksql"`
		Props map[string]any `json:"streamsProperties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.KSQL == "" {
		writeError(w, http.StatusBadRequest, "generic_error", 40000, "Invalid request body: a JSON object with ksql is required", "")
		return
	}
	rows, ok := s.pullQuery(w, r, req.KSQL, req.Props)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriter(w)
	schema := fmt.Sprintf("%s %s KEY, %s BIGINT", quote(s.cfg.KeyColumn), s.cfg.KeyType, quote(s.cfg.MinColumn))
	if s.cfg.CountColumn != "" {
		schema += fmt.Sprintf(", %s BIGINT", quote(s.cfg.CountColumn))
	}
	head, _ := json.Marshal(map[string]any{"header": map[string]any{"queryId": s.newQueryID(), "schema": schema}})
	bw.WriteString("[")
	bw.Write(head)
	for _, row := range rows {
		b, _ := json.Marshal(map[string]any{"row": map[string]any{"columns": row}})
		bw.WriteString(",\n")
		bw.Write(b)
	}
	bw.WriteString("]")
	_ = bw.Flush()
}

// handleQueryStream answers POST /query-stream: delimited (metadata line,
// then one array per row) when asked for, else one JSON array.
func (s *Server) handleQueryStream(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor < 2 && !s.prof.QueryStreamHTTP1 {
		writeError(w, http.StatusBadRequest, "generic_error", 40004, msgQueryStreamHTTP1, "")
		return
	}
	var req struct {
		SQL   string         `json:"sql"`
		Props map[string]any `json:"properties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.SQL == "" {
		writeError(w, http.StatusBadRequest, "generic_error", 40000, "Invalid request body: a JSON object with sql is required", "")
		return
	}
	rows, ok := s.pullQuery(w, r, req.SQL, req.Props)
	if !ok {
		return
	}
	names, types := []string{s.cfg.KeyColumn, s.cfg.MinColumn}, []string{s.cfg.KeyType, "BIGINT"}
	if s.cfg.CountColumn != "" {
		names, types = append(names, s.cfg.CountColumn), append(types, "BIGINT")
	}
	meta, _ := json.Marshal(map[string]any{"queryId": s.newQueryID(), "columnNames": names, "columnTypes": types})
	bw := bufio.NewWriter(w)
	if strings.Contains(r.Header.Get("Accept"), delimited) {
		w.Header().Set("Content-Type", delimited)
		bw.Write(meta)
		for _, row := range rows {
			b, _ := json.Marshal(row)
			bw.WriteString("\n")
			bw.Write(b)
		}
		bw.WriteString("\n")
	} else {
		w.Header().Set("Content-Type", "application/json")
		bw.WriteString("[")
		bw.Write(meta)
		for _, row := range rows {
			b, _ := json.Marshal(row)
			bw.WriteString(",")
			bw.Write(b)
		}
		bw.WriteString("]")
	}
	_ = bw.Flush()
}

// rateLimited answers a pull query refused by the rate limit, as the
// release's handler for that endpoint does (Profile.RateLimitQuery).
func (s *Server) rateLimited(w http.ResponseWriter, path string) {
	status := s.prof.RateLimitQuery
	if path == "/query-stream" {
		status = s.prof.RateLimitQueryStream
	}
	switch status {
	case http.StatusTooManyRequests:
		writeError(w, status, "generic_error", 42900, msgRateLimit, "")
	case http.StatusInternalServerError:
		writeError(w, status, "generic_error", 50000, msgInternal, "")
	default:
		writeError(w, http.StatusBadRequest, "generic_error", 40000, msgRateLimit, "")
	}
}

// handleExplain answers EXPLAIN <query id> with a queryDescription entity
// (ksqldb-rest-model QueryDescription: id, statementText, sources, sinks,
// topology, …) for the table's query.
func (s *Server) handleExplain(w http.ResponseWriter, id, stmt string) {
	if s.cfg.NoTable || id != s.tableQueryID() {
		statementError(w, fmt.Sprintf("Query with id:%s does not exist, use SHOW QUERIES to view the full set of running queries.", id), stmt)
		return
	}
	q := s.tableQuery()
	overridden := map[string]any{}
	maps.Copy(overridden, s.cfg.QueryProperties)
	writeJSON(w, http.StatusOK, []any{map[string]any{
		"@type": "queryDescription", "statementText": stmt, "warnings": []any{},
		"queryDescription": map[string]any{
			"id": id, "statementText": q["queryString"], "windowType": nil, "fields": []any{},
			"sources": []string{s.cfg.TableSource}, "sinks": []string{s.cfg.Table}, "topology": s.topology(),
			"executionPlan": "", "overriddenProperties": overridden, "queryType": "PERSISTENT", "state": s.cfg.QueryState,
		},
	}})
}
