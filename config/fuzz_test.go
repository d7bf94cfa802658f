package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets for the settings loader. Run with:
//
//	go test -run='^$' -fuzz='^FuzzLoad$' -fuzztime=60s ./config/
//
// The corpus found so far lives in testdata/fuzz/FuzzLoad.

// Secret values the harness injects; the fuzzer never sees them, so any
// appearance in an error or printed config is a leak.
const (
	fuzzKafkaSecret = "kAfKa-Fuzz-S3cret-91b2"
	fuzzSRSecret    = "sR-Fuzz-S3cret-77c4"
	fuzzKsqlSecret  = "kSqL-Fuzz-S3cret-05e8"
)

var fuzzSecrets = []string{fuzzKafkaSecret, fuzzSRSecret, fuzzKsqlSecret}

// leaks returns the injected secrets (or their URL-escaped forms) in s.
func leaks(s string) []string {
	var out []string
	for _, sec := range fuzzSecrets {
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec)} {
			if strings.Contains(s, form) {
				out = append(out, form)
			}
		}
	}
	return out
}

// TestArgumentErrorsDoNotEchoSecrets: an argument Load cannot take as a
// flag is echoed in full. When it is a secret-bearing flag (after "--", or
// typed with three dashes) the secret reaches stderr and the report.
func TestArgumentErrorsDoNotEchoSecrets(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--", "--kafka-sasl-password=" + fuzzKafkaSecret},
		{"---kafka-sasl-password=" + fuzzKafkaSecret},
		{"--", "--schema-registry-url=https://u:" + fuzzSRSecret + "@sr:8081"},
		{"--pipeline-workers=2", "--", "--ksqldb-url=http://u:" + fuzzKsqlSecret + "@ksql:8088"},
	} {
		var out bytes.Buffer
		_, err := Load(args, func(string) string { return "" }, &out)
		if err == nil {
			t.Fatalf("Load(%q) accepted", args)
		}
		if l := leaks(err.Error() + out.String()); len(l) > 0 {
			t.Errorf("Load(%q) echoes %q:\nerror: %v\noutput: %s", args, l, err, out.String())
		}
	}
}

// FuzzLoad feeds Load arbitrary flags, environment and YAML file content
// together with secrets injected through one of five channels: flags,
// environment, the YAML file, password files, or user:password@ in the
// registry and ksqlDB URLs. Load must never panic, and neither its error,
// its usage output nor the printed configuration may carry a secret.
// testdata/fuzz/FuzzLoad holds hand-written seeds, among them the input
// that found the echo of a misplaced secret argument
// (seed-double-dash-before-secret-flags).
func FuzzLoad(f *testing.F) {
	seeds := []struct {
		args, env, yaml string
		how             uint8
	}{
		{"--bigquery-project=p\n--bigquery-table=p.d.orders\n--kafka-brokers=b:9092\n--schema-registry-url=http://sr:8081\n--ksqldb-url=http://ksql:8088", "", "", 0},
		{"--pipeline-workers=0\n--kafka-security-protocol=SASL_SSL", "BACKFILL_KAFKA_SASL_MECHANISM=SCRAM-SHA-512\nBACKFILL_KAFKA_SASL_USERNAME=u", "", 1},
		{"", "BACKFILL_BIGQUERY_PROJECT=p", "bigquery:\n  table: p.d.t\nkafka:\n  brokers: [a:1, b:2]\n  properties:\n    linger.ms: \"5\"\n", 2},
		{"extra", "", "kafka: [1, 2]\n", 3},
		{"--", "", "schema_registry:\n  password: [a, b]\n", 4},
		{"--dry-run\nfalse", "", "ksqldb:\n  url: {a: b}\n", 0},
		{"-h", "", "", 1},
		{"--kafka-linger=soon", "BACKFILL_KSQLDB_TIMEOUT=x", "kafka:\n  brokerz: [x]\n", 2},
		{"", "", "- just\n- a list\n", 3},
		{"", "", "a: &x 1\nb: *x\n", 4},
		{"--schema-registry-url=http://u:p@h:80:80", "", ":\n", 0},
		{"--bigquery-params=since:DATETIME=2020", "", "\t\n", 1},
	}
	for _, s := range seeds {
		f.Add(s.args, s.env, s.yaml, s.how)
	}
	f.Fuzz(func(t *testing.T, argText, envText, yamlText string, how uint8) {
		for _, in := range []string{argText, envText, yamlText} {
			for _, sec := range fuzzSecrets {
				if strings.Contains(in, sec) {
					return // the fuzzer typed the secret itself
				}
			}
		}
		dir := t.TempDir()
		// The required settings first, so that many inputs load and the
		// printed configuration is checked too.
		args := []string{"--bigquery-project=p", "--bigquery-table=p.d.orders", "--kafka-brokers=b:9092",
			"--schema-registry-url=http://sr:8081", "--ksqldb-url=http://ksql:8088"}
		if argText != "" {
			args = append(args, strings.Split(argText, "\n")...)
		}
		env := map[string]string{}
		for _, line := range strings.Split(envText, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		yaml := yamlText
		write := func(name, text string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		// Secrets go in after the fuzzed arguments, as a job's manifest
		// appends them after its other flags.
		switch how % 5 {
		case 0:
			args = append(args, "--kafka-sasl-password="+fuzzKafkaSecret, "--schema-registry-password="+fuzzSRSecret, "--ksqldb-password="+fuzzKsqlSecret)
		case 1:
			env["BACKFILL_KAFKA_SASL_PASSWORD"], env["BACKFILL_SCHEMA_REGISTRY_PASSWORD"], env["BACKFILL_KSQLDB_PASSWORD"] = fuzzKafkaSecret, fuzzSRSecret, fuzzKsqlSecret
		case 2:
			yaml += fmt.Sprintf("\nkafka:\n  sasl_password: %q\nschema_registry:\n  password: %q\nksqldb:\n  password: %q\n", fuzzKafkaSecret, fuzzSRSecret, fuzzKsqlSecret)
		case 3:
			args = append(args, "--kafka-sasl-password-file="+write("k", fuzzKafkaSecret+"\n"),
				"--schema-registry-password-file="+write("s", fuzzSRSecret), "--ksqldb-password-file="+write("q", fuzzKsqlSecret+"\r\n"))
		case 4:
			args = append(args, "--schema-registry-url=https://sr-user:"+fuzzSRSecret+"@sr.example:8081",
				"--ksqldb-url=http://ksql-user:"+url.PathEscape(fuzzKsqlSecret)+"@ksql.example:8088")
			env["BACKFILL_KAFKA_SASL_PASSWORD"] = fuzzKafkaSecret
		}
		if yaml != "" {
			args = append([]string{"--config=" + write("c.yaml", yaml)}, args...)
		}
		var out bytes.Buffer
		c, err := Load(args, func(k string) string { return env[k] }, &out)
		if err != nil {
			if l := leaks(err.Error()); len(l) > 0 {
				t.Fatalf("the error carries secret %q:\n%v\nargs %q", l, err, args)
			}
		}
		if l := leaks(out.String()); len(l) > 0 {
			t.Fatalf("the usage output carries secret %q:\n%s\nargs %q", l, out.String(), args)
		}
		if err != nil {
			return // the partial Config returned with an error is not for use (it may still hold a URL with its password)
		}
		var printed bytes.Buffer
		js, _ := json.Marshal(c)
		printed.Write(js)
		fmt.Fprintf(&printed, "%v %+v %#v", c, c, c)
		slog.New(slog.NewJSONHandler(&printed, nil)).Info("config", "config", c)
		slog.New(slog.NewTextHandler(&printed, nil)).Info("config", "config", c, "kafka", c.Kafka, "sr", c.SchemaRegistry, "ksql", c.KsqlDB)
		if l := leaks(printed.String()); len(l) > 0 {
			t.Fatalf("printing the config shows secret %q:\n%s", l, printed.String())
		}
		for _, u := range []string{c.SchemaRegistry.URL, c.KsqlDB.URL} {
			if l := leaks(u); len(l) > 0 {
				t.Fatalf("a URL kept its password: %s", u)
			}
		}
	})
}
