package config

import (
	"io"
	"strings"
	"testing"
)

// TestErrorsNameWhereTheValueCameFrom: a shard index that came from
// JOB_COMPLETION_INDEX is reported as such, not as a flag or BACKFILL_*
// variable nobody set, and the error says what to set.
func TestErrorsNameWhereTheValueCameFrom(t *testing.T) {
	t.Parallel()
	_, err := Load(required, env(map[string]string{"JOB_COMPLETION_INDEX": "1"}), io.Discard)
	if err == nil {
		t.Fatal("JOB_COMPLETION_INDEX=1 with one shard was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "JOB_COMPLETION_INDEX=1") || strings.Contains(msg, "shard.index (flag --shard-index, env BACKFILL_SHARD_INDEX)") ||
		!strings.Contains(msg, "BACKFILL_SHARD_COUNT") {
		t.Errorf("the error does not say the index came from JOB_COMPLETION_INDEX and that shard.count is to be set: %v", err)
	}

	file := writeFile(t, "c.yaml", "ksqldb:\n  verify: often\n")
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--ksqldb-verify=often"}, nil, "ksqldb.verify (flag --ksqldb-verify)"},
		{nil, map[string]string{"BACKFILL_KSQLDB_VERIFY": "often"}, "ksqldb.verify (env BACKFILL_KSQLDB_VERIFY)"},
		{[]string{"--config", file}, nil, "ksqldb.verify (config file " + file + ")"},
	} {
		_, err := Load(append(c.args, required...), env(c.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want it to name %q", c.args, c.env, err, c.want)
		}
	}
}

// TestBrokerAddressWithCredentialsIsRefusedUnechoed: Kafka takes no
// credentials in a broker address; one there is refused, naming the
// setting and the address without its secret.
func TestBrokerAddressWithCredentialsIsRefusedUnechoed(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"u:S3CRET@b-1.msk:9096", "sasl_ssl://u:S3CRET@b-1.msk:9096", "S3CRET@b-1.msk:9096"} {
		_, err := Load(append(required, "--kafka-brokers=b-0.msk:9096,"+b), env(nil), io.Discard)
		if err == nil {
			t.Errorf("%s was accepted", b)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "S3CRET") || !strings.Contains(msg, "kafka.brokers") || !strings.Contains(msg, "b-1.msk:9096") {
			t.Errorf("%s: the error echoes the secret or names neither setting nor address: %v", b, err)
		}
	}
}
