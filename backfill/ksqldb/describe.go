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

// sourceDescription is the part of DESCRIBE's answer the client reads.
type sourceDescription struct {
	Name         string         `json:"name"`
	Type         string         `json:"type"` // STREAM or TABLE
	WindowType   *string        `json:"windowType"`
	Fields       []sourceField  `json:"fields"`
	KeyFormat    string         `json:"keyFormat"`
	ValueFormat  string         `json:"valueFormat"`
	Topic        string         `json:"topic"`
	Partitions   int            `json:"partitions"` // 0 when the server did not look the topic up
	Statement    string         `json:"statement"`  // the CREATE statement
	ReadQueries  []runningQuery `json:"readQueries"`
	WriteQueries []runningQuery `json:"writeQueries"`
	// QueryOffsetSummaries is filled by DESCRIBE … EXTENDED (see Progress).
	QueryOffsetSummaries json.RawMessage `json:"queryOffsetSummaries"`
	// warnings are the answer's warnings, e.g. 0.15's "Error from Kafka:
	// …" when it could not read the offsets.
	warnings []string
}

type sourceField struct {
	Name   string `json:"name"`
	Schema struct {
		Type string `json:"type"`
	} `json:"schema"`
	Type string `json:"type"` // "KEY" for key columns
}

type runningQuery struct {
	QueryString string          `json:"queryString"`
	Sinks       []string        `json:"sinks"`
	ID          json.RawMessage `json:"id"` // a string, or {"id":"…"} in old servers
	State       string          `json:"state"`
	StatusCount map[string]int  `json:"statusCount"`
	QueryType   string          `json:"queryType"`
}

func (q runningQuery) id() string {
	var s string
	if json.Unmarshal(q.ID, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(q.ID, &o)
	return o.ID
}

// running reports whether the query runs on at least one server.
func (q runningQuery) running() bool {
	if q.StatusCount != nil {
		return q.StatusCount["RUNNING"] > 0
	}
	return strings.EqualFold(q.State, "RUNNING")
}

func (q runningQuery) status() string {
	if q.State != "" {
		return q.State
	}
	var parts []string
	for s, n := range q.StatusCount {
		parts = append(parts, fmt.Sprintf("%s:%d", s, n))
	}
	return strings.Join(parts, ",")
}

func (q runningQuery) sinks(name string) bool {
	for _, s := range q.Sinks {
		if s == name {
			return true
		}
	}
	return false
}

// keyFields returns the key columns.
func (d *sourceDescription) keyFields() []sourceField {
	var out []sourceField
	for _, f := range d.Fields {
		if strings.EqualFold(f.Type, "KEY") {
			out = append(out, f)
		}
	}
	return out
}

// valueFields returns the value columns.
func (d *sourceDescription) valueFields() []sourceField {
	var out []sourceField
	for _, f := range d.Fields {
		if !strings.EqualFold(f.Type, "KEY") {
			out = append(out, f)
		}
	}
	return out
}

func (d *sourceDescription) describeColumns() string {
	parts := make([]string, len(d.Fields))
	for i, f := range d.Fields {
		parts[i] = f.Name + " " + f.Schema.Type
		if strings.EqualFold(f.Type, "KEY") {
			parts[i] += " KEY"
		}
	}
	return strings.Join(parts, ", ")
}

// ksqlRequest is the body of POST /ksql and POST /query.
type ksqlRequest struct {
	KSQL       string         `json:"ksql"`
	Properties map[string]any `json:"streamsProperties"`
}

// describe runs DESCRIBE on the configured name. A name in backquotes is
// used exactly; a bare name is tried exactly first and then upper-cased,
// which is where an unquoted CREATE statement stored it.
func (c *Client) describe(ctx context.Context, kind, configured string) (*sourceDescription, error) {
	candidates := []string{configured}
	if n := len(configured); n >= 2 && configured[0] == '`' && configured[n-1] == '`' {
		candidates = []string{strings.ReplaceAll(configured[1:n-1], "``", "`")}
	} else if up := strings.ToUpper(configured); up != configured {
		candidates = append(candidates, up)
	}
	var firstErr error
	for _, name := range candidates {
		d, err := c.describeExact(ctx, name)
		if err == nil {
			return d, nil
		}
		if !isNotFound(err) {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	tried := make([]string, len(candidates))
	for i, n := range candidates {
		tried[i] = QuoteIdentifier(n)
	}
	return nil, backfill.Errorf(backfill.KindContract, "the %s %s does not exist in ksqlDB at %s (tried %s; a name created with backquotes keeps its case, one created without is upper-cased): %w",
		kind, configured, c.base, strings.Join(tried, " and "), firstErr)
}

// describeExact runs DESCRIBE `name`;.
func (c *Client) describeExact(ctx context.Context, name string) (*sourceDescription, error) {
	return c.describeStatement(ctx, "DESCRIBE "+QuoteIdentifier(name)+";")
}

// serverInfo is GET /info's answer.
type serverInfo struct {
	Info struct {
		Version      string `json:"version"`
		ServerStatus string `json:"serverStatus"`
	} `json:"KsqlServerInfo"`
}

// info returns the server's version; it also proves the server is
// reachable and accepts the credentials.
func (c *Client) info(ctx context.Context) (serverInfo, error) {
	var si serverInfo
	err := c.call(ctx, "/info", nil, "application/json", func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&si)
	})
	return si, err
}

// keySchemaIDProp matches a KEY_SCHEMA_ID property in a CREATE statement.
var keySchemaIDProp = regexp.MustCompile(`(?i)\bKEY_SCHEMA_ID\s*=\s*'?(\d+)`)

// keySchemaID returns the KEY_SCHEMA_ID the source was created with
// (ksqlDB 0.24+), or 0.
func (d *sourceDescription) keySchemaID() int {
	m := keySchemaIDProp.FindStringSubmatch(d.Statement)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
