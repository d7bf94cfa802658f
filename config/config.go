// Package config loads and validates the backfill's settings from flags,
// environment variables (BACKFILL_*) and an optional YAML file, with
// precedence flags > environment > file > defaults.
package config

import (
	"time"
)

// Config is every setting of a run.
type Config struct {
	File    string        // the YAML file the settings were read from, if any
	DryRun  bool          // read and encode everything, produce nothing
	Mode    Mode          // auto, delta or full: what to produce on a rerun
	Timeout time.Duration // bound on the whole run; 0 means none
	RunID   string        // names this attempt; empty: a random id per attempt

	BigQuery       BigQuery
	Kafka          Kafka
	SchemaRegistry SchemaRegistry
	Mapping        Mapping
	KsqlDB         KsqlDB
	Pipeline       Pipeline
	Log            Log
	Shard          Shard
	ReportFile     string // also write the final JSON report here (e.g. /dev/termination-log)

	// origins says, per setting Load set, where its value came from
	// ("flag --x", "env BACKFILL_X", "config file f.yaml", or the
	// Indexed Job's JOB_COMPLETION_INDEX), for Validate's messages.
	origins map[string]string
}

// Shard splits the key space so that several pods (an Indexed Job) each
// backfill a disjoint part: shard i reads the keys k with |k mod count| = i.
type Shard struct {
	Index int // this run's shard; defaults to JOB_COMPLETION_INDEX
	Count int // number of shards; 1 means no sharding
}

// BigQuery says what to read and how.
type BigQuery struct {
	Project        string       // project that runs the query job
	BillingProject string       // quota/billing project, if different
	Location       string       // job location, e.g. EU or us-central1
	Table          string       // project.dataset.table used by the default query
	OrderColumn    string       // order id column used by the default query
	Query          string       // SQL; overrides the default query built from Table
	Params         []QueryParam // named query parameters (@name)
	// QueryKey, the same for every shard of one run, lets the shards share
	// one query job; the Kubernetes manifests set it to the Job's uid.
	QueryKey        string
	ReadAPI         ReadAPI // "storage" (Storage Read API, no fallback), "rest" or "auto" (storage, else rest)
	CredentialsFile string  // service-account key file; default: Application Default Credentials
	Endpoint        string  // REST endpoint override (emulators, private endpoints)
	StorageEndpoint string  // Storage Read API gRPC endpoint override
	// StoragePlaintext dials StorageEndpoint without TLS (emulators only).
	StoragePlaintext bool
	// DestinationTable receives the query's result (overwritten each
	// run); empty uses the job's anonymous result table.
	DestinationTable   string
	ReadStreams        int           // most Storage Read API streams read in parallel
	ReadSessionTimeout time.Duration // bound on creating the Storage Read API session, and on the first call to BigQuery
	// ReadRetryTimeout bounds how long a Storage Read API stream may keep
	// failing with retryable errors without delivering a row.
	ReadRetryTimeout time.Duration
	QueryTimeout     time.Duration // bound on running the query job before the first row
}

// QueryParam is one named query parameter.
type QueryParam struct {
	Name  string
	Type  string // STRING, INT64, FLOAT64, BOOL, DATE or TIMESTAMP
	Value string
}

// Kafka holds the producer settings.
type Kafka struct {
	Brokers               []string
	Topic                 string
	SecurityProtocol      string
	SASLMechanism         SASLMechanism
	SASLUsername          string
	SASLPassword          Secret
	SASLPasswordFile      string
	TLSCAFile             string
	TLSInsecureSkipVerify bool
	AWSRegion             string // MSK cluster region, for AWS_MSK_IAM; default AWS_REGION
	Compression           string
	Linger                time.Duration
	BatchBytes            int
	MessageTimeout        time.Duration
	QueueMaxMessages      int
	QueueMaxKBytes        int
	ConnectTimeout        time.Duration
	Properties            map[string]string
	RunHeader             bool // add the run's header to every record
}

// HTTPServer holds how to reach and trust an HTTP server with basic
// authentication: the Schema Registry's and ksqlDB's settings share it.
type HTTPServer struct {
	URL                   string
	Username              string
	Password              Secret
	PasswordFile          string // read into Password at load
	TLSCAFile             string // added to the system roots
	TLSInsecureSkipVerify bool
}

// SchemaRegistry holds the registry settings.
type SchemaRegistry struct {
	HTTPServer
	KeySchema   string // latest, a version number, or id:N
	ValueSchema string
	Timeout     time.Duration
	Retries     int
}

// Mapping binds source columns to the key and value fields.
type Mapping struct {
	KeyColumn    string
	ValueColumns map[string]string // value field -> column
}

// KsqlDB holds the preflight and verification settings.
type KsqlDB struct {
	HTTPServer
	Stream       string
	Table        string
	Preflight    bool
	Verify       VerifyKind // sample, full or none
	SampleSize   int
	StallTimeout time.Duration
	VerifyBatch  int
	Timeout      time.Duration
	Retries      int
}

// Pipeline tunes the read-encode-produce pipeline.
type Pipeline struct {
	Workers          int
	BatchSize        int
	DrainTimeout     time.Duration // grace for in-flight records after SIGTERM
	ProgressInterval time.Duration
	AllowEmpty       bool
}

// Log sets up logging.
type Log struct {
	Level  string // debug, info, warn or error
	Format string // json or text
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Timeout: 6 * time.Hour,
		Mode:    ModeAuto,
		BigQuery: BigQuery{
			OrderColumn:        "order_id",
			ReadAPI:            ReadAPIStorage,
			ReadStreams:        4,
			ReadSessionTimeout: 30 * time.Second,
			ReadRetryTimeout:   10 * time.Minute,
			QueryTimeout:       30 * time.Minute,
		},
		Kafka: Kafka{
			Topic:            "STREAM.ORDER.INSERT",
			SecurityProtocol: "PLAINTEXT",
			Compression:      "lz4",
			Linger:           20 * time.Millisecond,
			BatchBytes:       1 << 20,
			MessageTimeout:   2 * time.Minute,
			// Half librdkafka's default: docs/performance.md measures the
			// choice.
			QueueMaxMessages: 50000,
			QueueMaxKBytes:   32768,
			ConnectTimeout:   30 * time.Second,
			RunHeader:        true,
		},
		SchemaRegistry: SchemaRegistry{KeySchema: "latest", ValueSchema: "latest", Timeout: 10 * time.Second, Retries: 5},
		Mapping:        Mapping{KeyColumn: "user_id"},
		KsqlDB: KsqlDB{
			Stream: "stream_order_insert", Table: "table_min_order", Preflight: true,
			Verify: VerifySample, SampleSize: 1000, StallTimeout: 5 * time.Minute, VerifyBatch: 100,
			Timeout: 10 * time.Second, Retries: 5,
		},
		Pipeline: Pipeline{Workers: 4, BatchSize: 512, DrainTimeout: 20 * time.Second, ProgressInterval: 10 * time.Second},
		Log:      Log{Level: "info", Format: "json"},
		Shard:    Shard{Count: 1},
	}
}
