package ksqldb

import "strings"

// QuoteIdentifier returns name as a ksqlDB backquoted identifier: a
// backquoted name keeps its exact case and may hold any character; a
// backquote inside it is doubled. Every statement the client builds from
// configuration quotes its names this way, so `stream_order_insert` (made
// with backquotes, stored in lower case) and STREAM_ORDER_INSERT (made
// without, stored upper-cased) are both addressed exactly as DESCRIBE
// reports them.
func QuoteIdentifier(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
