package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Validate checks every setting and returns all problems at once, each
// naming its setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", name, c.origin(name), fmt.Sprintf(format, args...)))
	}
	oneOf := func(name, v string) {
		if !slices.Contains(choices[name], v) {
			bad(name, "%q is not one of %s", v, strings.Join(choices[name], ", "))
		}
	}

	bq := c.BigQuery
	if bq.Project == "" {
		bad("bigquery.project", "required")
	}
	if bq.Query == "" && bq.Table == "" {
		bad("bigquery.table", "set the orders table (project.dataset.table) or a full bigquery.query")
	}
	if bq.Table != "" && !tablePattern.MatchString(bq.Table) {
		bad("bigquery.table", "%q is not project.dataset.table or dataset.table", bq.Table)
	}
	if bq.Query == "" && !validIdent(bq.OrderColumn) {
		bad("bigquery.order_column", "%q is not a column name", bq.OrderColumn)
	}
	oneOf("bigquery.read_api", string(bq.ReadAPI))
	if bq.QueryTimeout <= 0 {
		bad("bigquery.query_timeout", "must be positive")
	}
	if bq.ReadSessionTimeout <= 0 {
		bad("bigquery.read_session_timeout", "must be positive")
	}
	if bq.ReadRetryTimeout <= 0 {
		bad("bigquery.read_retry_timeout", "must be positive")
	}
	if bq.ReadStreams < 1 || bq.ReadStreams > 1000 {
		bad("bigquery.read_streams", "%d is not in [1, 1000] (the Storage Read API's limit)", bq.ReadStreams)
	}
	if bq.DestinationTable != "" && !tablePattern.MatchString(bq.DestinationTable) {
		bad("bigquery.destination_table", "%q is not project.dataset.table or dataset.table", bq.DestinationTable)
	}

	k := c.Kafka
	if len(k.Brokers) == 0 && !c.DryRun {
		bad("kafka.brokers", "required (or run with --dry-run)")
	}
	for i, b := range k.Brokers {
		// Only what follows the last @ is shown: what precedes it may be a password.
		if at := strings.LastIndex(b, "@"); at >= 0 {
			bad("kafka.brokers", "address %d (%s@%s) holds credentials before the @, which Kafka does not take in an address: "+
				"remove them, and set kafka.sasl_username and kafka.sasl_password_file instead", i+1, httpc.Redacted, b[at+1:])
		}
	}
	if k.Topic == "" {
		bad("kafka.topic", "required")
	}
	oneOf("kafka.security_protocol", k.SecurityProtocol)
	if k.SASLMechanism == SASLAWSMSKIAM {
		// MSK IAM: OAUTHBEARER tokens signed with the pod's AWS credentials; no username or password.
		if k.SecurityProtocol != "SASL_SSL" {
			bad("kafka.security_protocol", "kafka.sasl_mechanism AWS_MSK_IAM needs SASL_SSL (MSK's IAM listener, port 9098), not %s", k.SecurityProtocol)
		}
		if k.AWSRegion == "" {
			bad("kafka.aws_region", "required with kafka.sasl_mechanism AWS_MSK_IAM (or set AWS_REGION)")
		}
		for _, name := range slices.Sorted(maps.Keys(k.Properties)) {
			if iamOwned(name) {
				bad("kafka.properties", "%s is set by kafka.sasl_mechanism AWS_MSK_IAM (SASL_SSL, OAUTHBEARER with tokens the job signs); remove it", name)
			}
		}
	} else if k.SASLMechanism != "" {
		oneOf("kafka.sasl_mechanism", string(k.SASLMechanism))
		if !strings.HasPrefix(k.SecurityProtocol, "SASL_") {
			bad("kafka.security_protocol", "%s does not use SASL, but kafka.sasl_mechanism is %s: use SASL_SSL", k.SecurityProtocol, k.SASLMechanism)
		}
		if k.SASLUsername == "" || k.SASLPassword == "" {
			bad("kafka.sasl_username", "SASL %s needs kafka.sasl_username and kafka.sasl_password(_file)", k.SASLMechanism)
		}
	} else if strings.HasPrefix(k.SecurityProtocol, "SASL_") {
		bad("kafka.sasl_mechanism", "required with security protocol %s", k.SecurityProtocol)
	}
	oneOf("kafka.compression", k.Compression)
	positive := map[string]int64{
		"kafka.batch_bytes": int64(k.BatchBytes), "kafka.message_timeout": int64(k.MessageTimeout),
		"kafka.queue_max_messages": int64(k.QueueMaxMessages), "kafka.queue_max_kbytes": int64(k.QueueMaxKBytes),
		"kafka.connect_timeout": int64(k.ConnectTimeout), "schema_registry.timeout": int64(c.SchemaRegistry.Timeout),
		"ksqldb.timeout": int64(c.KsqlDB.Timeout), "pipeline.drain_timeout": int64(c.Pipeline.DrainTimeout),
	}
	for name, v := range positive {
		if v <= 0 {
			bad(name, "must be positive")
		}
	}
	if k.Linger < 0 {
		bad("kafka.linger", "must not be negative")
	}

	sr := c.SchemaRegistry
	if err := checkURL(sr.URL, sr.Password); err != nil {
		bad("schema_registry.url", "%v", err)
	}
	for name, sel := range map[string]string{"schema_registry.key_schema": sr.KeySchema, "schema_registry.value_schema": sr.ValueSchema} {
		if _, err := backfill.ParseSchemaSelector(sel); err != nil {
			bad(name, "%v", err)
		}
	}
	if c.KsqlDB.Retries < 0 {
		bad("ksqldb.retries", "must not be negative")
	}
	if sr.Retries < 0 {
		bad("schema_registry.retries", "must not be negative")
	}

	if !validIdent(c.Mapping.KeyColumn) {
		bad("mapping.key_column", "%q is not a column name", c.Mapping.KeyColumn)
	}

	q := c.KsqlDB
	oneOf("ksqldb.verify", string(q.Verify))
	if q.URL == "" && (q.Preflight || q.Verify != VerifyNone) {
		bad("ksqldb.url", "required for the preflight and verification; set ksqldb.preflight=false and ksqldb.verify=none to skip them (not recommended: ksqlDB drops undecodable records silently)")
	} else if q.URL != "" {
		if err := checkURL(q.URL, q.Password); err != nil {
			bad("ksqldb.url", "%v", err)
		}
	}
	if q.Stream == "" {
		bad("ksqldb.stream", "required")
	}
	if q.Table == "" {
		bad("ksqldb.table", "required")
	}
	if q.Verify == VerifySample && q.SampleSize <= 0 {
		bad("ksqldb.sample_size", "must be positive")
	}
	if q.VerifyBatch <= 0 || q.VerifyBatch > 1000 {
		bad("ksqldb.verify_batch", "must be between 1 and 1000")
	}
	if q.StallTimeout <= 0 {
		bad("ksqldb.stall_timeout", "must be positive")
	}

	p := c.Pipeline
	if p.Workers < 1 || p.Workers > 1024 {
		bad("pipeline.workers", "must be between 1 and 1024")
	}
	if p.BatchSize < 1 || p.BatchSize > 100000 {
		bad("pipeline.batch_size", "must be between 1 and 100000")
	}
	if c.Shard.Count < 1 || c.Shard.Count > 100000 {
		bad("shard.count", "must be between 1 and 100000")
	} else if c.Shard.Index < 0 || c.Shard.Index >= c.Shard.Count {
		countFrom, set := c.origins["shard.count"]
		if !set {
			countFrom = "the default"
		}
		bad("shard.index", "%d is not in [0, %d) (shard.count is %d, from %s): set shard.count (flag --shard-count, env %s) to the number of shards (an Indexed Job's completions)",
			c.Shard.Index, c.Shard.Count, c.Shard.Count, countFrom, Env("shard.count"))
	}
	oneOf("mode", string(c.Mode))
	knownMode := slices.Contains(choices["mode"], string(c.Mode))
	if knownMode && c.Mode != ModeFull && c.KsqlDB.URL == "" {
		bad("mode", "%s mode waits for ksqlDB and looks keys up in it: set ksqldb.url, or say mode=full", c.Mode)
	}
	if knownMode && c.Mode != ModeFull && len(k.Brokers) == 0 {
		bad("kafka.brokers", "%s mode reads the topic's offsets: set the brokers, or say mode=full", c.Mode)
	}
	oneOf("log.level", c.Log.Level)
	oneOf("log.format", c.Log.Format)
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	return errors.Join(errs...)
}

// origin says where the setting's value came from, or, for a value Load
// did not set (a default, or a Config built in code), how to set it.
func (c *Config) origin(name string) string {
	if o, ok := c.origins[name]; ok {
		return o
	}
	return fmt.Sprintf("flag --%s, env %s", flagName(name), Env(name))
}

var tablePattern = regexp.MustCompile(`^([A-Za-z0-9_-]+(\.|:))?[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$`)

// checkURL checks that raw is an http(s) URL; the error shows it without
// password, neither in its userinfo nor anywhere else.
func checkURL(raw string, password Secret) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", httpc.RedactURL(raw, password.Reveal()))
	}
	return nil
}

// moveUserinfo moves user:password@ out of a URL into the credentials, so
// that the URL can be logged.
func moveUserinfo(prefix, raw string, user *string, pass *Secret) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw, nil
	}
	if p, ok := u.User.Password(); ok {
		if *pass != "" {
			return "", fmt.Errorf("%s.url holds a password and %s.password is set too: keep one", prefix, prefix)
		}
		*pass = Secret(p)
	}
	if *user == "" {
		*user = u.User.Username()
	}
	u.User = nil
	return u.String(), nil
}

// iamOwned reports whether the librdkafka property name is one that
// AWS_MSK_IAM sets: the security protocol and every SASL property.
func iamOwned(name string) bool {
	return name == "security.protocol" || strings.HasPrefix(name, "sasl.")
}
