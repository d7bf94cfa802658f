package backfilltest

import _ "embed" // the schemas below

// The schemas ksqlDB registers for stream_order_insert (topic
// STREAM.ORDER.INSERT) when CREATE STREAM runs: the bare primitive "long"
// for the key and a KsqlDataSourceSchema record with a nullable ORDER_ID
// for the value. testdata/ksql holds the one copy every test and double
// uses.
var (
	//go:embed testdata/ksql/key.avsc
	KsqlKeySchema string
	//go:embed testdata/ksql/value.avsc
	KsqlValueSchema string
	// KsqlValueSchemaV2 is the second, identical version ksqlDB ≤0.28
	// registers on the first INSERT … VALUES: the same record without
	// connect.name.
	//go:embed testdata/ksql/value-v2.avsc
	KsqlValueSchemaV2 string
)
