package config

import (
	"fmt"
	"slices"
	"strings"
)

// Values of the settings that take one of a fixed set.
const (
	ModeAuto  = "auto"  // mode: full when the topic never held a record, else delta
	ModeDelta = "delta" // mode: only what the table lacks
	ModeFull  = "full"  // mode: every row

	VerifySample = "sample" // ksqldb.verify: a uniform sample of the keys
	VerifyFull   = "full"   // ksqldb.verify: every key
	VerifyNone   = "none"   // ksqldb.verify: no verification

	ReadAPIStorage = "storage" // bigquery.read_api: the Storage Read API, or a failure
	ReadAPIREST    = "rest"    // bigquery.read_api: jobs.getQueryResults pages
	ReadAPIAuto    = "auto"    // bigquery.read_api: storage, else rest, saying why

	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLAWSMSKIAM   = "AWS_MSK_IAM" // OAUTHBEARER tokens signed with the pod's AWS credentials
)

// choices lists the allowed values of every setting that has a fixed set,
// for Validate and CheckValue.
var choices = map[string][]string{
	"mode":                    {ModeAuto, ModeDelta, ModeFull},
	"bigquery.read_api":       {ReadAPIStorage, ReadAPIREST, ReadAPIAuto},
	"kafka.security_protocol": {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"},
	"kafka.sasl_mechanism":    {SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLAWSMSKIAM},
	"kafka.compression":       {"none", "gzip", "snappy", "lz4", "zstd"},
	"ksqldb.verify":           {VerifySample, VerifyFull, VerifyNone},
	"log.level":               {"debug", "info", "warn", "error"},
	"log.format":              {"json", "text"},
}

// CheckValue reports whether value is a valid value of the dotted setting
// name as the job reads it from its environment or flags: it parses as
// the setting's type and, for a setting with a fixed set of values, is
// one of them. Manifests and other tools check values with it.
func CheckValue(name, value string) error {
	var c Config
	for _, s := range settings(&c) {
		if s.name != name {
			continue
		}
		if err := s.set([]string{value}); err != nil {
			return err
		}
		if allowed, ok := choices[name]; ok && !slices.Contains(allowed, strings.TrimSpace(value)) {
			return fmt.Errorf("%q is not one of %s", value, strings.Join(allowed, ", "))
		}
		return nil
	}
	return fmt.Errorf("%s is not a setting", name)
}
