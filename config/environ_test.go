package config

import (
	"strings"
	"testing"
)

func TestUnknownEnvNamesTheClosestSetting(t *testing.T) {
	t.Parallel()
	got := UnknownEnv([]string{"BACKFILL_KAFKA_BROKER=b:9092", "BACKFILL_KAFKA_BROKERS=b:9092", "BACKFILL_CONFIG=/etc/c.yaml",
		"PATH=/bin", "BACKFILL_KSQLDB_VERIFY_TIMEOUT=5m", "BACKFILL_KSQLDB_STAL_TIMEOUT=1m"})
	if len(got) != 2 || !strings.Contains(got[0], "BACKFILL_KAFKA_BROKER is not a setting") || !strings.Contains(got[0], "did you mean BACKFILL_KAFKA_BROKERS?") ||
		!strings.Contains(got[1], "did you mean BACKFILL_KSQLDB_STALL_TIMEOUT?") {
		t.Fatalf("warnings %q", got)
	}
}
