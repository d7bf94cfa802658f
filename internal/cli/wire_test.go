package cli

import (
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/config"
)

// The settings' typed values reach the adapters as the values the adapters
// know, and every verification kind makes a recorder.
func TestTypedSettingsReachTheAdapters(t *testing.T) {
	c := config.Default()
	for set, want := range map[config.ReadAPI]string{
		config.ReadAPIStorage: bigquery.ReadStorage, config.ReadAPIREST: bigquery.ReadREST, config.ReadAPIAuto: bigquery.ReadAuto,
	} {
		c.BigQuery.ReadAPI = set
		if got := BigQueryConfig(c).ReadAPI; got != want {
			t.Errorf("bigquery.read_api=%s reaches the source as %q, want %q", set, got, want)
		}
	}
	c.Kafka.SASLMechanism = config.SASLAWSMSKIAM
	if got := KafkaConfig(c, "r").SASLMechanism; got != kafka.AWSMSKIAM {
		t.Errorf("kafka.sasl_mechanism=%s reaches the producer as %q, want %q", config.SASLAWSMSKIAM, got, kafka.AWSMSKIAM)
	}
	for set, want := range map[config.VerifyKind]ksqldb.VerifyMode{
		config.VerifySample: ksqldb.ModeSample, config.VerifyFull: ksqldb.ModeFull, config.VerifyNone: ksqldb.ModeNone,
	} {
		rec, err := ksqldb.NewRecorder(recorderMode(set), 10, 1)
		if err != nil || rec.Mode() != want {
			t.Errorf("ksqldb.verify=%s: recorder %v, %v; want mode %s", set, rec, err, want)
		}
	}
	if _, err := ksqldb.NewRecorder(recorderMode("some"), 10, 1); err == nil || backfill.KindOf(err) != backfill.KindInternal {
		t.Errorf("a kind config.Validate refuses: %v, want an internal error", err)
	}
}
