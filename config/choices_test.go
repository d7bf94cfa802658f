package config

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestCheckValueParsesAsTheJobDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, wantErr string
	}{
		{"pipeline.workers", "4", ""},
		{"pipeline.workers", "four", "whole number"},
		{"kafka.linger", "20ms", ""},
		{"kafka.linger", "20", "duration"},
		{"bigquery.read_api", "auto", ""},
		{"bigquery.read_api", "grpc", "not one of storage, rest, auto"},
		{"kafka.sasl_mechanism", "AWS_MSK_IAM", ""},
		{"kafka.brokers", "a:1,b:2", ""},
		{"bigquery.reed_api", "rest", "not a setting"},
	} {
		err := CheckValue(tc.name, tc.value)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckValue(%s, %q) = %v, want %q", tc.name, tc.value, err, tc.wantErr)
		}
	}
}

// Every setting with a fixed set of values is a setting, and its default
// is one of them.
func TestChoicesNameSettingsAndHoldTheirDefaults(t *testing.T) {
	t.Parallel()
	c := Default()
	defaults := map[string]string{}
	for _, s := range settings(&c) {
		if v, ok := s.text(); ok {
			defaults[s.name] = v
		}
	}
	for name, allowed := range choices {
		d, ok := defaults[name]
		if !ok {
			t.Errorf("choices names %s, which is not a string setting", name)
		} else if d != "" && !slices.Contains(allowed, d) {
			t.Errorf("%s defaults to %q, not one of %v", name, d, allowed)
		}
	}
}

// Every setting of a named string type has a fixed set of values, and
// its usage names each of them.
func TestTypedSettingsHaveChoicesTheirUsageNames(t *testing.T) {
	t.Parallel()
	var c Config
	for _, s := range settings(&c) {
		allowed, ok := choices[s.name]
		if _, typed := s.ptr.(namedString); typed && !ok {
			t.Errorf("%s has a named type but no choices", s.name)
		}
		for _, v := range allowed {
			if !strings.Contains(s.usage, v) {
				t.Errorf("the usage of %s does not name %q: %s", s.name, v, s.usage)
			}
		}
	}
}

// A typed setting parses into its field and prints in the reference.
func TestTypedSettingsParseAndDocument(t *testing.T) {
	t.Parallel()
	c, err := Load(append([]string{"--mode=delta", "--ksqldb-verify=full", "--bigquery-read-api=rest",
		"--kafka-security-protocol=SASL_SSL", "--kafka-sasl-mechanism=SCRAM-SHA-512", "--kafka-sasl-username=u", "--kafka-sasl-password=p"}, required...), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeDelta || c.KsqlDB.Verify != VerifyFull || c.BigQuery.ReadAPI != ReadAPIREST || c.Kafka.SASLMechanism != SASLScramSHA512 {
		t.Fatalf("mode %q, verify %q, read_api %q, sasl %q", c.Mode, c.KsqlDB.Verify, c.BigQuery.ReadAPI, c.Kafka.SASLMechanism)
	}
	want := map[string]string{"mode": "auto", "ksqldb.verify": "sample", "bigquery.read_api": "storage", "kafka.sasl_mechanism": ""}
	for _, d := range Reference() {
		if w, ok := want[d.Name]; ok && d.Default != w {
			t.Errorf("%s documented with default %q, want %q", d.Name, d.Default, w)
		}
	}
}
