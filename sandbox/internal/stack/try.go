package stack

import (
	"fmt"
	"strings"
)

// TryCommand is one shell command `make serve` prints for trying the
// stack by hand, and what it shows.
type TryCommand struct {
	Shell string // run from the repository's root
	Note  string
}

// KcatFormat is kcat's -f framing wiredecode reads: partition, offset, key
// and value lengths (-1 for NULL), then the key's and the value's bytes,
// so that binary keys and values stay intact.
const KcatFormat = "%p %o %K %S %k%s"

// TryCommands are the commands `make serve` prints, with this stack's
// endpoints and the config file at configFile. They need only what the
// README installs: Go, Debian's kcat (built without Avro or Schema
// Registry support, so the repository's cmd/wiredecode decodes the
// records) and curl. The end-to-end tests run the kcat and curl ones.
func (s *Stack) TryCommands(configFile string) []TryCommand {
	st := s.Settings()
	curl := "curl -sS --fail-with-body"
	if s.ksqlCAFile != "" {
		curl += " --cacert " + s.ksqlCAFile
	}
	return []TryCommand{
		{"go run ./cmd/backfill run --config " + configFile, "the backfill"},
		{"go run ./cmd/backfill check --config " + configFile, "the preflight only"},
		{fmt.Sprintf("kcat -b %s -t %s -C -e -q -f '%s' | (cd sandbox && go run ./cmd/wiredecode -registry %s)",
			st["kafka.brokers"], Topic, KcatFormat, st["schema_registry.url"]),
			"every record: partition, offset, the key's bytes in hex (0x00, the 4-byte schema id, then the user id as an Avro long: a zigzag varint), and key and value decoded with the schemas their ids name"},
		{curl + " -X POST " + st["ksqldb.url"] + `/ksql -H 'Accept: application/vnd.ksql.v1+json' -d '{"ksql":"DESCRIBE ` + "`table_min_order`" + ` EXTENDED;","streamsProperties":{}}'`,
			"the table, and its query's committed offsets"},
		{curl + " -X POST " + st["ksqldb.url"] + `/query -d '{"ksql":"SELECT * FROM ` + "`table_min_order`" + ` WHERE ACCOUNT_ID IN (1,2,3);","streamsProperties":{}}'`,
			"a pull query"},
	}
}

// FormatTryCommands formats the commands as `make serve` prints them.
func FormatTryCommands(cmds []TryCommand) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  # %s\n  %s\n", c.Note, c.Shell)
	}
	return b.String()
}
