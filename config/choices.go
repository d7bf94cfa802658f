package config

import (
	"fmt"
	"slices"
	"strings"
)

// Mode is what a run produces: the mode setting.
type Mode string

// Modes.
const (
	ModeAuto  Mode = "auto"  // full when the topic never held a record, else delta
	ModeDelta Mode = "delta" // only what the table lacks
	ModeFull  Mode = "full"  // every row
)

// VerifyKind is how the run verifies through ksqlDB: the ksqldb.verify setting.
type VerifyKind string

// Verification kinds.
const (
	VerifySample VerifyKind = "sample" // a uniform sample of the keys
	VerifyFull   VerifyKind = "full"   // every key
	VerifyNone   VerifyKind = "none"   // no verification
)

// ReadAPI is how the run reads the query's result: the bigquery.read_api setting.
type ReadAPI string

// Read APIs.
const (
	ReadAPIStorage ReadAPI = "storage" // the Storage Read API, or a failure
	ReadAPIREST    ReadAPI = "rest"    // jobs.getQueryResults pages
	ReadAPIAuto    ReadAPI = "auto"    // storage, else rest, saying why
)

// SASLMechanism is how the producer authenticates: the kafka.sasl_mechanism
// setting; empty means no SASL.
type SASLMechanism string

// SASL mechanisms.
const (
	SASLPlain       SASLMechanism = "PLAIN"
	SASLScramSHA256 SASLMechanism = "SCRAM-SHA-256"
	SASLScramSHA512 SASLMechanism = "SCRAM-SHA-512"
	SASLAWSMSKIAM   SASLMechanism = "AWS_MSK_IAM" // OAUTHBEARER tokens signed with the pod's AWS credentials
)

// The allowed values of each typed setting, in documentation order.
var (
	modes          = []Mode{ModeAuto, ModeDelta, ModeFull}
	verifyKinds    = []VerifyKind{VerifySample, VerifyFull, VerifyNone}
	readAPIs       = []ReadAPI{ReadAPIStorage, ReadAPIREST, ReadAPIAuto}
	saslMechanisms = []SASLMechanism{SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLAWSMSKIAM}
)

// choices lists the allowed values of every setting that has a fixed set,
// for Validate and CheckValue.
var choices = map[string][]string{
	"mode":                    names(modes),
	"bigquery.read_api":       names(readAPIs),
	"kafka.security_protocol": {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"},
	"kafka.sasl_mechanism":    names(saslMechanisms),
	"kafka.compression":       {"none", "gzip", "snappy", "lz4", "zstd"},
	"ksqldb.verify":           names(verifyKinds),
	"log.level":               {"debug", "info", "warn", "error"},
	"log.format":              {"json", "text"},
}

// names returns the values as strings.
func names[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
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
