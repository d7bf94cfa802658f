package ksqldb

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// cell is the table's MIN value for one key; null when the aggregate is NULL.
type cell struct {
	value int64
	null  bool
}

// pullStatement is the pull query for a batch of keys.
func pullStatement(f *Facts, keys []int64) string {
	var b strings.Builder
	b.WriteString("SELECT * FROM ")
	b.WriteString(QuoteIdentifier(f.Table))
	b.WriteString(" WHERE ")
	b.WriteString(QuoteIdentifier(f.TableKeyColumn))
	b.WriteString(" IN (")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(k, 10))
	}
	b.WriteString(");")
	return b.String()
}

// pull looks keys up in the table and returns the rows found. useStream
// sends the query to /query-stream, otherwise to /query.
func (c *Client) pull(ctx context.Context, f *Facts, keys []int64, useStream bool) (map[int64]cell, error) {
	stmt := pullStatement(f, keys)
	rows := make(map[int64]cell, len(keys))
	add := func(cols []string, row []any) error {
		ki, vi := column(cols, f.TableKeyColumn), column(cols, f.TableValueColumn)
		if ki < 0 || vi < 0 {
			return fmt.Errorf("pull query columns %v lack %s or %s", cols, f.TableKeyColumn, f.TableValueColumn)
		}
		if len(row) != len(cols) {
			return fmt.Errorf("pull query row %v does not match columns %v", row, cols)
		}
		k, null, err := toInt64(row[ki])
		if err != nil || null {
			return fmt.Errorf("pull query key %v is not a BIGINT: %w", row[ki], err)
		}
		v, null, err := toInt64(row[vi])
		if err != nil {
			return fmt.Errorf("pull query value %v of %s is not a BIGINT: %w", row[vi], f.TableValueColumn, err)
		}
		if old, ok := rows[k]; ok && !old.null && (null || old.value < v) {
			return nil
		}
		rows[k] = cell{value: v, null: null}
		return nil
	}
	props := map[string]any{}
	if f.StandbyReads {
		// No standby lagging by even one offset may answer (MaximumLagFilter,
		// which needs ksql.lag.reporting.enable=true). /query converts the
		// value to the setting's type (KsqlRequest.getConfigOverrides);
		// /query-stream passes its properties on as parsed from JSON
		// (QueryStreamHandler.getRequest, v0.29.0) to a cast to Long.
		props[settingMaxLag] = 0
		useStream = false
	}
	var err error
	if useStream {
		err = c.call(ctx, "/query-stream", map[string]any{"sql": stmt, "properties": props}, mediaDelimited, func(r io.Reader) error {
			clear(rows)
			return readQueryStream(r, add)
		})
	} else {
		err = c.call(ctx, "/query", ksqlRequest{KSQL: stmt, Properties: props}, mediaKsql, func(r io.Reader) error {
			clear(rows)
			return readQuery(r, add)
		})
	}
	return rows, err
}

// readQuery reads POST /query's answer: one JSON array, a header holding
// the schema and then one object per row.
func readQuery(r io.Reader, add func(cols []string, row []any) error) error {
	br := bufio.NewReader(r)
	dec := json.NewDecoder(br)
	dec.UseNumber()
	if first, err := peek(br); err != nil {
		return err
	} else if first == '{' {
		return decodeInlineError(dec)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	var cols []string
	for dec.More() {
		var e struct {
			Header *struct {
				Schema string `json:"schema"`
			} `json:"header"`
			Row *struct {
				Columns []any `json:"columns"`
			} `json:"row"`
			ErrorMessage *APIError `json:"errorMessage"`
			Code         int       `json:"error_code"`
			Message      string    `json:"message"`
		}
		if err := dec.Decode(&e); err != nil {
			return err
		}
		switch {
		case e.ErrorMessage != nil:
			return e.ErrorMessage
		case e.Code != 0:
			return &APIError{Code: e.Code, Message: e.Message}
		case e.Header != nil:
			cols = schemaColumns(e.Header.Schema)
		case e.Row != nil:
			if cols == nil {
				return errors.New("pull query row before its header")
			}
			if err := add(cols, e.Row.Columns); err != nil {
				return err
			}
		}
	}
	_, err := dec.Token()
	return err
}

// readQueryStream reads POST /query-stream's answer: the delimited form
// (a metadata object on the first line, then one JSON array per row) or
// the JSON form (one array of the same elements).
func readQueryStream(r io.Reader, add func(cols []string, row []any) error) error {
	br := bufio.NewReader(r)
	dec := json.NewDecoder(br)
	dec.UseNumber()
	first, err := peek(br)
	if err != nil {
		return err
	}
	inArray := first == '['
	if inArray {
		if _, err := dec.Token(); err != nil {
			return err
		}
	}
	var cols []string
	for {
		if inArray && !dec.More() {
			_, err := dec.Token()
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF && !inArray {
			if cols == nil {
				return errors.New("query-stream answer without metadata")
			}
			return nil
		} else if err != nil {
			return err
		}
		if len(raw) > 0 && raw[0] == '[' {
			if cols == nil {
				return errors.New("query-stream row before its metadata")
			}
			var row []any
			d := json.NewDecoder(strings.NewReader(string(raw)))
			d.UseNumber()
			if err := d.Decode(&row); err != nil {
				return err
			}
			if err := add(cols, row); err != nil {
				return err
			}
			continue
		}
		var obj struct {
			ColumnNames []string `json:"columnNames"`
			Code        int      `json:"error_code"`
			Type        string   `json:"@type"`
			Message     string   `json:"message"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		switch {
		case obj.Code != 0:
			return &APIError{Type: obj.Type, Code: obj.Code, Message: obj.Message}
		case obj.ColumnNames != nil && cols == nil:
			cols = obj.ColumnNames
		}
	}
}

func decodeInlineError(dec *json.Decoder) error {
	var e APIError
	if err := dec.Decode(&e); err != nil {
		return err
	}
	if e.Code == 0 && e.Message == "" {
		return errors.New("unexpected JSON object instead of a result array")
	}
	return &e
}

// peek returns the first non-space byte without consuming it.
func peek(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			return b, br.UnreadByte()
		}
	}
}

// schemaColumns returns the column names of a header schema such as
// "`ACCOUNT_ID` BIGINT KEY, `MIN_ORDER_ID` BIGINT".
func schemaColumns(schema string) []string {
	var cols []string
	s := strings.TrimSpace(schema)
	for len(s) > 0 {
		var name string
		if s[0] == '`' {
			var b strings.Builder
			i := 1
			for i < len(s) {
				if s[i] == '`' {
					if i+1 < len(s) && s[i+1] == '`' {
						b.WriteByte('`')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			name, s = b.String(), s[i:]
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			name, s = s[:end], s[end:]
		}
		cols = append(cols, name)
		i := topLevelComma(s)
		if i < 0 {
			break
		}
		s = strings.TrimSpace(s[i+1:])
	}
	return cols
}

// topLevelComma returns the index of the first comma outside <> and ().
func topLevelComma(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<', '(':
			depth++
		case '>', ')':
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// column returns the index of name in cols, exact match first.
func column(cols []string, name string) int {
	for i, c := range cols {
		if c == name {
			return i
		}
	}
	for i, c := range cols {
		if strings.EqualFold(c, name) {
			return i
		}
	}
	return -1
}

// toInt64 converts a decoded JSON number without going through float64.
func toInt64(v any) (n int64, null bool, err error) {
	switch x := v.(type) {
	case nil:
		return 0, true, nil
	case json.Number:
		n, err = strconv.ParseInt(x.String(), 10, 64)
		return n, false, err
	}
	return 0, false, fmt.Errorf("got %T", v)
}

// supportsQueryStream reports whether a server of this version answers
// /query-stream over HTTP/1.1 (#8449): ksqlDB 0.24 and later, Confluent
// Platform 7.1 and later. Older servers answer 400 / 40004 (checkHttp2 in
// api/server/ServerUtils.java, v0.22.0-ksqldb, v7.0.0).
func supportsQueryStream(version string) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimLeft(parts[1], "v"))
	if err1 != nil || err2 != nil {
		return false
	}
	switch {
	case major == 0:
		return minor >= 24
	case major == 7:
		return minor >= 1
	}
	return major > 7
}
