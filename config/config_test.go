package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedenceFlagsOverEnvOverFileOverDefaults(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", `
kafka:
  topic: FROM.FILE
  brokers: [f1:9092, f2:9092]
  linger: 50ms
  properties:
    socket.keepalive.enable: "true"
pipeline:
  workers: 8
  batch_size: 100
mapping:
  value_columns:
    ORDER_ID: first_order
`)
	c, err := Load(append([]string{"--config", file, "--pipeline-workers=2"}, required...), env(map[string]string{
		"BACKFILL_PIPELINE_WORKERS":    "6",
		"BACKFILL_PIPELINE_BATCH_SIZE": "200",
		"BACKFILL_KAFKA_TOPIC":         "FROM.ENV",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"workers (flag)":       {c.Pipeline.Workers, 2},
		"batch (env)":          {c.Pipeline.BatchSize, 200},
		"topic (env)":          {c.Kafka.Topic, "FROM.ENV"},
		"brokers (flag)":       {strings.Join(c.Kafka.Brokers, ","), "b:9092"},
		"linger (file)":        {c.Kafka.Linger, 50 * time.Millisecond},
		"property (file)":      {c.Kafka.Properties["socket.keepalive.enable"], "true"},
		"value column (file)":  {c.Mapping.ValueColumns["ORDER_ID"], "first_order"},
		"compression default":  {c.Kafka.Compression, "lz4"},
		"key column default":   {c.Mapping.KeyColumn, "user_id"},
		"verify mode default":  {c.KsqlDB.Verify, "sample"},
		"security default":     {c.Kafka.SecurityProtocol, "PLAINTEXT"},
		"drain below k8s 30 s": {c.Pipeline.DrainTimeout < 30*time.Second, true},
	}
	for name, v := range checks {
		if fmt.Sprint(v[0]) != fmt.Sprint(v[1]) {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--pipeline-workers=many"}, nil, "--pipeline-workers"},
		{nil, map[string]string{"BACKFILL_KAFKA_LINGER": "soon"}, "BACKFILL_KAFKA_LINGER"},
		{[]string{"--kafka-compression=brotli"}, nil, "kafka.compression"},
		{[]string{"--kafka-security-protocol=SASL_SSL"}, nil, "kafka.sasl_mechanism"},
		{[]string{"--schema-registry-key-schema=newest"}, nil, "schema_registry.key_schema"},
		{[]string{"--ksqldb-verify=some"}, nil, "ksqldb.verify"},
		{[]string{"--bigquery-table=orders"}, nil, "bigquery.table"},
		{[]string{"--bigquery-params=since:DATETIME=2020"}, nil, "DATETIME"},
		{[]string{"--mapping-key-column=user id"}, nil, "mapping.key_column"},
		{[]string{"--kafka-properties=partitioner"}, nil, "key=value"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
	} {
		_, err := Load(append(append([]string{}, required...), tc.args...), env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) = %v; want an error mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}
	_, err := Load(nil, env(nil), io.Discard)
	for _, name := range []string{"bigquery.project", "kafka.brokers", "schema_registry.url", "ksqldb.url"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("empty config: error %v does not name %s", err, name)
		}
	}
}

func TestUnknownFileSettingRejected(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", "kafka:\n  brokerz: [x]\n")
	_, err := Load(append([]string{"--config", file}, required...), env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "kafka.brokerz") {
		t.Fatalf("want unknown setting kafka.brokerz, got %v", err)
	}
}

func TestDryRunNeedsNoBrokersAndBoolFlags(t *testing.T) {
	t.Parallel()
	c, err := Load([]string{"--dry-run", "--mode=full", "--bigquery-project=p", "--bigquery-table=d.t", "--schema-registry-url=http://sr",
		"--ksqldb-preflight=false", "--ksqldb-verify=none"}, env(nil), io.Discard)
	if err != nil || !c.DryRun || c.KsqlDB.Preflight {
		t.Fatalf("Load = %+v, %v", c, err)
	}
}

// TestAutoAndDeltaNeedKsqlDBAndBrokers: auto and delta modes read the
// topic's offsets and wait for ksqlDB, so neither may silently mean full.
func TestAutoAndDeltaNeedKsqlDBAndBrokers(t *testing.T) {
	t.Parallel()
	base := []string{"--dry-run", "--bigquery-project=p", "--bigquery-table=d.t", "--schema-registry-url=http://sr", "--ksqldb-preflight=false", "--ksqldb-verify=none"}
	for _, mode := range []string{"auto", "delta"} {
		_, err := Load(append([]string{"--mode=" + mode}, base...), env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), mode+" mode waits for ksqlDB") || !strings.Contains(err.Error(), mode+" mode reads the topic's offsets") {
			t.Errorf("mode=%s without ksqldb.url and brokers: %v", mode, err)
		}
	}
}

// An unknown mode is reported once, not again as a mode that needs
// ksqlDB and the brokers.
func TestUnknownModeIsOneError(t *testing.T) {
	t.Parallel()
	base := []string{"--dry-run", "--bigquery-project=p", "--bigquery-table=d.t", "--schema-registry-url=http://sr", "--ksqldb-preflight=false", "--ksqldb-verify=none"}
	_, err := Load(append([]string{"--mode=bogus"}, base...), env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"bogus" is not one of auto, delta, full`) {
		t.Fatalf("mode=bogus: %v", err)
	}
	if strings.Contains(err.Error(), "bogus mode") {
		t.Errorf("mode=bogus is also reported as a mode that needs ksqlDB or the brokers:\n%v", err)
	}
}

// TestRemovedVerifyTimeoutSaysWhatReplacesIt: ksqldb.verify_timeout is
// refused wherever it is set, naming ksqldb.stall_timeout.
func TestRemovedVerifyTimeoutSaysWhatReplacesIt(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", "ksqldb:\n  verify_timeout: 5m\n")
	for what, load := range map[string]func() error{
		"flag": func() error {
			_, err := Load(append([]string{"--ksqldb-verify-timeout=5m"}, required...), env(nil), io.Discard)
			return err
		},
		"env": func() error {
			_, err := Load(required, env(map[string]string{"BACKFILL_KSQLDB_VERIFY_TIMEOUT": "5m"}), io.Discard)
			return err
		},
		"file": func() error {
			_, err := Load(append([]string{"--config", file}, required...), env(nil), io.Discard)
			return err
		},
	} {
		if err := load(); err == nil || !strings.Contains(err.Error(), "ksqldb.verify_timeout was removed") || !strings.Contains(err.Error(), "ksqldb.stall_timeout") {
			t.Errorf("%s: %v", what, err)
		}
	}
}

func TestSecretsFromFilesAndURLsNeverPrinted(t *testing.T) {
	t.Parallel()
	pw := writeFile(t, "pw", "kafka-s3cret\n")
	c, err := Load(append([]string{"--kafka-security-protocol=SASL_SSL", "--kafka-sasl-mechanism=SCRAM-SHA-512",
		"--kafka-sasl-username=u", "--kafka-sasl-password-file=" + pw,
		"--schema-registry-url=https://sruser:sr-s3cret@sr.example:8081"}, required[:3]...), env(map[string]string{
		"BACKFILL_KSQLDB_URL": "http://ksql:8088", "BACKFILL_KSQLDB_PASSWORD": "ksql-s3cret", "BACKFILL_KSQLDB_USERNAME": "k",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.SASLPassword.Reveal() != "kafka-s3cret" || c.SchemaRegistry.Password.Reveal() != "sr-s3cret" ||
		c.SchemaRegistry.Username != "sruser" || c.SchemaRegistry.URL != "https://sr.example:8081" {
		t.Fatalf("credentials not resolved: %+v", c.SchemaRegistry)
	}
	var out bytes.Buffer
	js, _ := json.Marshal(c)
	out.Write(js)
	fmt.Fprintf(&out, "%v %+v %#v %s", c, c, c, c.Kafka.SASLPassword)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "config", c, "pw", c.KsqlDB.Password)
	for _, s := range []string{"kafka-s3cret", "sr-s3cret", "ksql-s3cret"} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("secret %q printed:\n%s", s, out.String())
		}
	}
}

// A URL refused as not http(s) is shown without its password: in its
// userinfo, also where the URL does not parse, or anywhere else in it when
// the password is set apart.
func TestRefusedURLsAreShownWithoutPassword(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"ftp://u:s3cret@sr.example:8081": "ftp://u:redacted@sr.example:8081",
		"http://u:s3cret@sr:80:80":       "http://redacted@sr:80:80", // does not parse
		"ftp://sr.example/?token=s3cret": "ftp://sr.example/?token=[redacted]",
		"http://sr:80:80/?token=s3cret":  "http://sr:80:80/?token=[redacted]",
	} {
		err := checkURL(raw, "s3cret")
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), want) {
			t.Errorf("checkURL(%q) = %v, want it to show %s", raw, err, want)
		}
	}
	for arg, want := range map[string]string{
		"--schema-registry-url=https://u:s3cret@sr:8081": "--schema-registry-url=https://u:redacted@sr:8081",
		"--ksqldb-password=s3cret":                       "--ksqldb-password=[redacted]",
		"--ksqldb-password-file=/run/pw":                 "--ksqldb-password-file=/run/pw",
		"u:s3cret@http://x":                              "redacted@http://x",
	} {
		if got := redactArg(arg); got != want {
			t.Errorf("redactArg(%q) = %q, want %q", arg, got, want)
		}
	}
}

func TestPasswordAndFileTogetherRejected(t *testing.T) {
	t.Parallel()
	pw := writeFile(t, "pw", "x")
	_, err := Load(append([]string{"--ksqldb-password=y", "--ksqldb-password-file=" + pw}, required...), env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ksqldb.password") {
		t.Fatalf("got %v", err)
	}
}

func TestHelpListsEnvNames(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := Load([]string{"-h"}, env(nil), &out); err != ErrHelp {
		t.Fatalf("got %v, want ErrHelp", err)
	}
	if !strings.Contains(out.String(), "BACKFILL_KAFKA_BROKERS") || !strings.Contains(out.String(), "-schema-registry-url") {
		t.Fatalf("usage lacks names:\n%s", out.String())
	}
}

func TestQueryParams(t *testing.T) {
	t.Parallel()
	c, err := Load(append([]string{"--bigquery-params=since:DATE=2024-01-01", "--bigquery-params=min:int64=5,name=x"}, required...), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []QueryParam{{"since", "DATE", "2024-01-01"}, {"min", "INT64", "5"}, {"name", "STRING", "x"}}
	if fmt.Sprint(c.BigQuery.Params) != fmt.Sprint(want) {
		t.Fatalf("params = %v, want %v", c.BigQuery.Params, want)
	}
}

func TestShardDefaultsFromIndexedJob(t *testing.T) {
	t.Parallel()
	c, err := Load(append([]string{"--shard-count=4"}, required...), env(map[string]string{"JOB_COMPLETION_INDEX": "3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Shard.Index != 3 || c.Shard.Count != 4 {
		t.Fatalf("shard %+v", c.Shard)
	}
	if _, err := Load(append([]string{"--shard-count=4", "--shard-index=4"}, required...), env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "shard.index") {
		t.Fatalf("index beyond count: %v", err)
	}
	c, _ = Load(required, env(nil), io.Discard)
	if c.Shard.Count != 1 || c.Shard.Index != 0 {
		t.Fatalf("unsharded: shard %+v", c.Shard)
	}
}

// TestShardIndexMustAgreeWithTheIndexedJob: a shard.index from a flag,
// the environment or the file that disagrees with JOB_COMPLETION_INDEX
// would make every pod read the same shard; it is a configuration error,
// and so is an unparsable JOB_COMPLETION_INDEX.
func TestShardIndexMustAgreeWithTheIndexedJob(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", "shard:\n  index: 0\n")
	for what, load := range map[string]func() error{
		"env": func() error {
			_, err := Load(append([]string{"--shard-count=4"}, required...), env(map[string]string{"JOB_COMPLETION_INDEX": "3", "BACKFILL_SHARD_INDEX": "0"}), io.Discard)
			return err
		},
		"flag": func() error {
			_, err := Load(append([]string{"--shard-count=4", "--shard-index=1"}, required...), env(map[string]string{"JOB_COMPLETION_INDEX": "3"}), io.Discard)
			return err
		},
		"file": func() error {
			_, err := Load(append([]string{"--shard-count=4", "--config", file}, required...), env(map[string]string{"JOB_COMPLETION_INDEX": "3"}), io.Discard)
			return err
		},
	} {
		if err := load(); err == nil || !strings.Contains(err.Error(), "JOB_COMPLETION_INDEX=3") {
			t.Errorf("%s: %v; want a conflict naming JOB_COMPLETION_INDEX=3", what, err)
		}
	}
	if _, err := Load(append([]string{"--shard-count=4", "--shard-index=3"}, required...), env(map[string]string{"JOB_COMPLETION_INDEX": "3"}), io.Discard); err != nil {
		t.Errorf("agreeing index: %v", err)
	}
	if _, err := Load(append([]string{"--shard-count=4"}, required...), env(map[string]string{"JOB_COMPLETION_INDEX": "three"}), io.Discard); err == nil || !strings.Contains(err.Error(), "JOB_COMPLETION_INDEX") {
		t.Errorf("unparsable JOB_COMPLETION_INDEX: %v", err)
	}
}

// TestPropertyValuesMayContainCommas: kafka.properties splits repeated
// values and key=value items, not values: debug=broker,topic is one
// property, and no part of a malformed secret-looking item is echoed.
func TestPropertyValuesMayContainCommas(t *testing.T) {
	t.Parallel()
	c, err := Load(append([]string{"--kafka-properties=debug=broker,topic", "--kafka-properties=ssl.key.password=abc,SECRETPART"}, required...), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Kafka.Properties; got["debug"] != "broker,topic" || got["ssl.key.password"] != "abc,SECRETPART" || len(got) != 2 {
		t.Fatalf("properties %v", got)
	}
	c, err = Load(required, env(map[string]string{"BACKFILL_KAFKA_PROPERTIES": "linger.ms=5,debug=broker,topic,msg"}), io.Discard)
	if err != nil || c.Kafka.Properties["linger.ms"] != "5" || c.Kafka.Properties["debug"] != "broker,topic,msg" {
		t.Fatalf("env: %v %v", c.Kafka.Properties, err)
	}
	_, err = Load(append([]string{"--kafka-properties=SECRETONLY,x=1"}, required...), env(nil), io.Discard)
	if err == nil || strings.Contains(err.Error(), "SECRETONLY") {
		t.Fatalf("malformed item: %v; want an error that does not echo it", err)
	}
}
