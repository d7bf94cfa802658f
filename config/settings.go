package config

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// setting is one configurable value, known by its dotted name in the YAML
// file, as --dotted-name-with-dashes on the command line and as
// BACKFILL_DOTTED_NAME in the environment.
type setting struct {
	name  string
	usage string
	ptr   any // *string, namedString, *Secret, *int, *bool, *time.Duration, *[]string, *map[string]string, *[]QueryParam
}

// namedString is a setting of a named string type (Mode, VerifyKind,
// ReadAPI, SASLMechanism): it parses and prints as a string.
type namedString interface {
	setString(string)
	String() string
}

type namedPtr[T ~string] struct{ p *T }

func (n namedPtr[T]) setString(s string) { *n.p = T(s) }
func (n namedPtr[T]) String() string     { return string(*n.p) }

// named makes the field p a setting.
func named[T ~string](p *T) namedString { return namedPtr[T]{p} }

// text returns the value of a string-valued setting.
func (s setting) text() (string, bool) {
	switch p := s.ptr.(type) {
	case *string:
		return *p, true
	case namedString:
		return p.String(), true
	}
	return "", false
}

// flagName returns the command-line flag name of a dotted setting name.
func flagName(name string) string { return strings.NewReplacer(".", "-", "_", "-").Replace(name) }

// Env returns the environment variable name of a dotted setting name.
func Env(name string) string {
	return "BACKFILL_" + strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
}

func settings(c *Config) []setting {
	return slices.Concat([]setting{
		{"dry_run", "read and encode every row but produce nothing", &c.DryRun},
		{"mode", "full: produce every row; delta: only rows whose key the table lacks or holds a larger minimum for (reruns); auto: full when the topic has never held a record, else delta", named(&c.Mode)},
		{"timeout", "bound on the whole run (0: none)", &c.Timeout},
		{"run_id", "names this attempt in the report and, with kafka.run_header, in every record's header (default: a new random id per attempt)", &c.RunID},
		{"report.file", "also write the final JSON report to this file (e.g. /dev/termination-log)", &c.ReportFile},

		{"bigquery.project", "Google Cloud project that runs the query job (required)", &c.BigQuery.Project},
		{"bigquery.billing_project", "quota/billing project, if not bigquery.project", &c.BigQuery.BillingProject},
		{"bigquery.location", "BigQuery job location (e.g. EU, us-central1); unset: the source table's location (tables.get), or for bigquery.query the dry run's; passed on every job call (jobs outside the US and EU multi-regions are found only in their location)", &c.BigQuery.Location},
		{"bigquery.table", "project.dataset.table of orders, for the default query", &c.BigQuery.Table},
		{"bigquery.order_column", "order id column, for the default query", &c.BigQuery.OrderColumn},
		{"bigquery.query", "SQL to run instead of the default MIN(order id) per user query: one SELECT whose columns are the key and the value fields' (see mapping.*; any other column is refused); the job learns them with a dry run and runs the query wrapped to one row per key (the key, MIN of the first value field, the other fields from the row holding that minimum)", &c.BigQuery.Query},
		{"bigquery.params", "query parameters name[:TYPE]=value (repeatable; TYPE: STRING, INT64, FLOAT64, BOOL, DATE, TIMESTAMP)", &c.BigQuery.Params},
		{"bigquery.query_key", "shared by the shards of one run (the manifests set the Kubernetes Job's uid): the query job's id derives from it, so the first shard runs the query and the others attach to that job; reading through the Storage Read API, the query runs once for all shards. Empty: each run queries alone", &c.BigQuery.QueryKey},
		{"bigquery.read_api", "how to read the result: storage (the Storage Read API, or a failure naming why not), rest (jobs.getQueryResults pages), or auto (storage, else rest with the cause logged and reported)", named(&c.BigQuery.ReadAPI)},
		{"bigquery.read_streams", "most Storage Read API streams read in parallel", &c.BigQuery.ReadStreams},
		{"bigquery.read_session_timeout", "bound on creating the Storage Read API session, and on the first call to BigQuery (an endpoint that does not answer fails the run with exit 4 instead of waiting for bigquery.query_timeout)", &c.BigQuery.ReadSessionTimeout},
		{"bigquery.read_retry_timeout", "how long a Storage Read API stream may keep failing with retryable errors (Aborted, DeadlineExceeded, Internal, Unavailable: retried without an attempt bound, backoff up to 30s, as the official client does) without delivering a row before the run fails with exit 4", &c.BigQuery.ReadRetryTimeout},
		{"bigquery.destination_table", "project.dataset.table (or dataset.table) naming where the query writes its result for the Storage Read API to read: each query job writes its own new table <table>_<job id> in that dataset (WRITE_EMPTY; the shards of one run share their one job's table), which expires 24 h later; default: the job's anonymous result table. Use a scratch dataset", &c.BigQuery.DestinationTable},
		{"bigquery.credentials_file", "Google credentials file, of the type it names: a service account key (service_account) or a workload identity federation credential configuration (external_account, e.g. EKS); also impersonated_service_account, authorized_user (default: Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, else the metadata server, e.g. GKE Workload Identity)", &c.BigQuery.CredentialsFile},
		{"bigquery.endpoint", "BigQuery REST endpoint override", &c.BigQuery.Endpoint},
		{"bigquery.storage_endpoint", "Storage Read API gRPC endpoint override (host:port)", &c.BigQuery.StorageEndpoint},
		{"bigquery.storage_plaintext", "dial the Storage Read API endpoint without TLS (emulators only)", &c.BigQuery.StoragePlaintext},
		{"bigquery.query_timeout", "bound on running the query job before rows flow", &c.BigQuery.QueryTimeout},

		{"kafka.brokers", "bootstrap brokers host:port (comma-separated or repeated; required unless dry_run)", &c.Kafka.Brokers},
		{"kafka.topic", "topic behind the ksqlDB stream", &c.Kafka.Topic},
		{"kafka.security_protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", &c.Kafka.SecurityProtocol},
		{"kafka.sasl_mechanism", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM (needs SASL_SSL; AWS credentials from the default chain, e.g. EKS IRSA; kafka.properties may then set neither security.protocol nor sasl.*)", named(&c.Kafka.SASLMechanism)},
		{"kafka.sasl_username", "SASL username", &c.Kafka.SASLUsername},
		{"kafka.sasl_password", "SASL password (secret; prefer kafka.sasl_password_file)", &c.Kafka.SASLPassword},
		{"kafka.sasl_password_file", "file holding the SASL password", &c.Kafka.SASLPasswordFile},
		{"kafka.tls_ca_file", "PEM file of CA certificates for the brokers, used instead of the system's roots (librdkafka's ssl.ca.location)", &c.Kafka.TLSCAFile},
		{"kafka.tls_insecure_skip_verify", "do not verify broker certificates (unsafe)", &c.Kafka.TLSInsecureSkipVerify},
		{"kafka.aws_region", "AWS region of the MSK cluster, for AWS_MSK_IAM (default: the AWS_REGION environment variable)", &c.Kafka.AWSRegion},
		{"kafka.compression", "none, gzip, snappy, lz4 or zstd", &c.Kafka.Compression},
		{"kafka.linger", "time to wait to fill a batch", &c.Kafka.Linger},
		{"kafka.batch_bytes", "maximum batch size in bytes", &c.Kafka.BatchBytes},
		{"kafka.message_timeout", "a record not acknowledged within this fails", &c.Kafka.MessageTimeout},
		{"kafka.queue_max_messages", "producer queue bound, in records", &c.Kafka.QueueMaxMessages},
		{"kafka.queue_max_kbytes", "producer queue bound, in KiB", &c.Kafka.QueueMaxKBytes},
		{"kafka.connect_timeout", "bound on reaching the brokers at start", &c.Kafka.ConnectTimeout},
		{"kafka.properties", "extra librdkafka properties key=value (repeatable, or comma-separated; a value may contain commas, e.g. debug=broker,topic)", &c.Kafka.Properties},
		{"kafka.run_header", "add an ordermin-backfill-run header naming the run to every record, so that the report can count records the broker stored twice (ksqlDB ignores headers on a stream without HEADER columns)", &c.Kafka.RunHeader},
	}, c.SchemaRegistry.settings("schema_registry", "Schema Registry", "the registry", "the registry's", "Schema Registry URL (required)"), []setting{
		{"schema_registry.key_schema", "key schema to write with: latest (the version holding ksqlDB's own bare key schema, else the latest), a version number, or id:N", &c.SchemaRegistry.KeySchema},
		{"schema_registry.value_schema", "value schema to write with: latest, a version number, or id:N", &c.SchemaRegistry.ValueSchema},
		{"schema_registry.timeout", "per-request timeout", &c.SchemaRegistry.Timeout},
		{"schema_registry.retries", "retries on 5xx, 429 and transport errors", &c.SchemaRegistry.Retries},

		{"mapping.key_column", "source column that becomes the record key", &c.Mapping.KeyColumn},
		{"mapping.value_columns", "FIELD=column pairs binding value fields to source columns (repeatable; default: the column named like the field or min_<field>; a result holding both is refused unless the field is mapped here)", &c.Mapping.ValueColumns},
	}, c.KsqlDB.settings("ksqldb", "ksqlDB", "ksqlDB", "ksqlDB's", "ksqlDB server URL (required unless ksqldb.preflight=false and ksqldb.verify=none)"), []setting{
		{"ksqldb.stream", "stream fed by the topic", &c.KsqlDB.Stream},
		{"ksqldb.table", "table holding MIN(order id) per key", &c.KsqlDB.Table},
		{"ksqldb.preflight", "check the stream, table and formats with DESCRIBE before writing", &c.KsqlDB.Preflight},
		{"ksqldb.verify", "verification after producing: sample, full or none", named(&c.KsqlDB.Verify)},
		{"ksqldb.sample_size", "keys checked in sample mode", &c.KsqlDB.SampleSize},
		{"ksqldb.stall_timeout", "how long ksqlDB's table query may make no progress while the job waits for it to aggregate the topic (before delta lookups and before verification)", &c.KsqlDB.StallTimeout},
		{"ksqldb.verify_batch", "keys per pull query", &c.KsqlDB.VerifyBatch},
		{"ksqldb.timeout", "per-request timeout", &c.KsqlDB.Timeout},
		{"ksqldb.retries", "retries on 429, 5xx and transport errors", &c.KsqlDB.Retries},

		{"pipeline.workers", "goroutines filtering and encoding at once (one more hands records to the producer)", &c.Pipeline.Workers},
		{"pipeline.batch_size", "rows handed to a goroutine at a time", &c.Pipeline.BatchSize},
		{"pipeline.drain_timeout", "after SIGTERM, how long to wait for records in flight", &c.Pipeline.DrainTimeout},
		{"pipeline.progress_interval", "how often to log progress (0: never)", &c.Pipeline.ProgressInterval},
		{"pipeline.allow_empty", "an empty query result is a success instead of a failure", &c.Pipeline.AllowEmpty},

		{"shard.index", "this run's shard, 0 <= index < shard.count (default: JOB_COMPLETION_INDEX of an Indexed Job)", &c.Shard.Index},
		{"shard.count", "number of disjoint key-space shards (1: no sharding)", &c.Shard.Count},

		{"log.level", "debug, info, warn or error", &c.Log.Level},
		{"log.format", "json or text", &c.Log.Format},
	})
}

// settings returns the six connection settings of an HTTP server under
// prefix: name is the server's name in the usage texts, subject and
// possessive how the TLS settings speak of it.
func (h *HTTPServer) settings(prefix, name, subject, possessive, urlUsage string) []setting {
	return []setting{
		{prefix + ".url", urlUsage, &h.URL},
		{prefix + ".username", name + " basic-auth user", &h.Username},
		{prefix + ".password", name + " basic-auth password (secret; prefer the _file form)", &h.Password},
		{prefix + ".password_file", "file holding the " + name + " password", &h.PasswordFile},
		{prefix + ".tls_ca_file", "PEM file of CA certificates trusted for " + subject + " in addition to the system's roots", &h.TLSCAFile},
		{prefix + ".tls_insecure_skip_verify", "do not verify " + possessive + " certificate (unsafe)", &h.TLSInsecureSkipVerify},
	}
}

// set parses raw values into the setting. A list setting replaces its
// whole value; a scalar takes the last value.
func (s setting) set(values []string) error {
	if len(values) == 0 {
		return nil
	}
	last := strings.TrimSpace(values[len(values)-1])
	switch p := s.ptr.(type) {
	case *string:
		*p = last
	case namedString:
		p.setString(last)
	case *Secret:
		*p = Secret(last)
	case *int:
		n, err := strconv.Atoi(last)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", last)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(last)
		if err != nil {
			return fmt.Errorf("%q is not true or false", last)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(last)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 5m", last)
		}
		*p = d
	case *[]string:
		*p = splitList(values)
	case *map[string]string:
		m := map[string]string{}
		for i, kv := range splitPairs(values) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				// The item is not echoed: it may be part of a secret.
				return fmt.Errorf("item %d (%d characters) is not key=value", i+1, len(kv))
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		*p = m
	case *[]QueryParam:
		var ps []QueryParam
		for _, kv := range splitList(values) {
			q, err := parseParam(kv)
			if err != nil {
				return err
			}
			ps = append(ps, q)
		}
		*p = ps
	default:
		return fmt.Errorf("unsupported setting type %T", p)
	}
	return nil
}

// pairKey is what may stand before the = of a key=value item.
var pairKey = regexp.MustCompile(`^\s*[A-Za-z0-9_.-]+\s*=`)

// splitPairs splits key=value items: each repeated value, and within one
// value at the commas followed by a new key=, so that a value may itself
// contain commas (debug=broker,topic). Empty items are dropped.
func splitPairs(values []string) []string {
	var out []string
	for _, v := range values {
		start := len(out)
		for _, part := range strings.Split(v, ",") {
			if len(out) > start && !pairKey.MatchString(part) {
				out[len(out)-1] += "," + part
				continue
			}
			out = append(out, part)
		}
	}
	kept := out[:0]
	for _, item := range out {
		if item = strings.TrimSpace(item); item != "" {
			kept = append(kept, item)
		}
	}
	return kept
}

// splitList splits comma-separated values and drops empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

var paramTypes = map[string]bool{"STRING": true, "INT64": true, "FLOAT64": true, "BOOL": true, "DATE": true, "TIMESTAMP": true}

func parseParam(s string) (QueryParam, error) {
	nameType, value, ok := strings.Cut(s, "=")
	if !ok {
		return QueryParam{}, fmt.Errorf("query parameter %q is not name[:TYPE]=value", s)
	}
	name, typ, _ := strings.Cut(nameType, ":")
	name, typ = strings.TrimSpace(name), strings.ToUpper(strings.TrimSpace(typ))
	if typ == "" {
		typ = "STRING"
	}
	if !validIdent(name) {
		return QueryParam{}, fmt.Errorf("query parameter name %q must be letters, digits and underscores", name)
	}
	if !paramTypes[typ] {
		keys := make([]string, 0, len(paramTypes))
		for k := range paramTypes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return QueryParam{}, fmt.Errorf("query parameter %s has type %q; want one of %s", name, typ, strings.Join(keys, ", "))
	}
	return QueryParam{Name: name, Type: typ, Value: value}, nil
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Names returns every setting's dotted name, in documentation order.
func Names() []string {
	var c Config
	all := settings(&c)
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.name
	}
	return names
}

// Doc describes one setting for documentation: docs/settings.md and
// the Kubernetes ConfigMap's commented list.
type Doc struct {
	Name, Flag, Env, Default, Usage string
	Secret                          bool
}

// Reference documents every setting with its default.
func Reference() []Doc {
	c := Default()
	var out []Doc
	for _, s := range settings(&c) {
		d := Doc{Name: s.name, Flag: "--" + flagName(s.name), Env: Env(s.name), Usage: s.usage}
		switch p := s.ptr.(type) {
		case *Secret:
			d.Secret = true
		case *[]string:
			d.Default = strings.Join(*p, ",")
		case *map[string]string, *[]QueryParam:
		default:
			d.Default = fmt.Sprint(reflectValue(p))
		}
		out = append(out, d)
	}
	return out
}

func reflectValue(p any) any {
	switch v := p.(type) {
	case *string:
		return *v
	case namedString:
		return v.String()
	case *int:
		return *v
	case *bool:
		return *v
	case *time.Duration:
		return *v
	}
	return ""
}
