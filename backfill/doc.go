// Package backfill holds the domain of ordermin-backfill: rows read from a
// source, the mapping of source columns onto the Avro key and value schemas
// that ksqlDB registered, the Confluent wire-format encoder, and the bounded
// pipeline that turns rows into acknowledged Kafka records.
//
// Outside systems live in subpackages (bigquery, kafka, schemaregistry,
// ksqldb) that depend on this package, never the other way round.
package backfill
