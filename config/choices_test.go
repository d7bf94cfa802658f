package config

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckValueParsesAsTheJobDoes(t *testing.T) {
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
	c := Default()
	defaults := map[string]string{}
	for _, s := range settings(&c) {
		if p, ok := s.ptr.(*string); ok {
			defaults[s.name] = *p
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
