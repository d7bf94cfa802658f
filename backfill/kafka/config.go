// Package kafka produces the backfill's records with confluent-kafka-go
// (librdkafka): idempotent, acks=all, Java-compatible murmur2 partitioning,
// every delivery report counted.
package kafka

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Config holds the producer settings.
type Config struct {
	Brokers          []string
	Topic            string
	SecurityProtocol string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	SASLMechanism    string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM
	SASLUsername     string
	SASLPassword     string // secret: never logged
	TLSCAFile        string
	// TLSInsecureSkipVerify turns off broker certificate verification.
	TLSInsecureSkipVerify bool
	// AWSRegion is the MSK cluster's region, for AWS_MSK_IAM tokens.
	AWSRegion string
	// tokens supplies SASL/OAUTHBEARER tokens for AWS_MSK_IAM in tests;
	// nil means the AWS MSK IAM signer with the default credential chain
	// (environment, EKS IRSA web identity, instance role) and AWSRegion.
	tokens tokenSource

	Compression      string        // none, gzip, snappy, lz4 or zstd
	Linger           time.Duration // how long to wait to fill a batch
	BatchBytes       int           // maximum batch size in bytes
	MessageTimeout   time.Duration // a record not acknowledged within this fails
	QueueMaxMessages int           // local queue bound, in records
	QueueMaxKBytes   int           // local queue bound, in KiB
	ConnectTimeout   time.Duration // bound on the start-up metadata request
	// Properties are extra librdkafka properties; they override the above.
	Properties map[string]string
	// RunID, when set, goes into every record's RunHeader header, so that
	// ReadBack can tell this run's duplicates from others' records.
	RunID string
}

// forcedProperties are set whatever Properties say: they are what makes
// the backfill correct for ksqlDB, its retries free of duplicates (but for
// the librdkafka epoch-bump case docs/ksqldb.md describes under duplicates).
var forcedProperties = map[string]string{
	"enable.idempotence":       "true",
	"acks":                     "all",
	"partitioner":              "murmur2_random",
	"allow.auto.create.topics": "false",
}

// connection is what every client of the job shares, the producer and the
// consumers alike: the brokers and how to reach them (security protocol,
// SASL or AWS MSK IAM, TLS).
func (c Config) connection(clientID string) (ckafka.ConfigMap, error) {
	if len(c.Brokers) == 0 {
		return nil, fmt.Errorf("no Kafka brokers configured")
	}
	for i, b := range c.Brokers {
		// Never echoed whole: what precedes the @ may be a password.
		if at := strings.LastIndex(b, "@"); at >= 0 {
			return nil, fmt.Errorf("broker address %d (%s@%s) in the Kafka settings holds credentials, which librdkafka does not take in an address: remove them and set the SASL username and password", i+1, httpc.Redacted, b[at+1:])
		}
	}
	m := ckafka.ConfigMap{
		"bootstrap.servers": strings.Join(c.Brokers, ","),
		"client.id":         clientID,
		"security.protocol": orDefault(c.SecurityProtocol, "PLAINTEXT"),
	}
	switch c.SASLMechanism {
	case "":
	case AWSMSKIAM:
		if err := c.iamConfig(m); err != nil {
			return nil, err
		}
	default:
		m["sasl.mechanisms"] = c.SASLMechanism
		m["sasl.username"] = c.SASLUsername
		m["sasl.password"] = c.SASLPassword
	}
	if c.TLSCAFile != "" {
		m["ssl.ca.location"] = c.TLSCAFile
	}
	if c.TLSInsecureSkipVerify {
		m["enable.ssl.certificate.verification"] = false
		m["ssl.endpoint.identification.algorithm"] = "none"
	}
	return m, nil
}

// withProperties sets the user's extra Properties on m, then own, which
// win over them. A property that would change a forced one is refused:
// the producer passes forcedProperties as forced; a consumer's own
// settings simply win.
func (c Config) withProperties(m ckafka.ConfigMap, own map[string]string, forced bool) (ckafka.ConfigMap, error) {
	for k, v := range c.Properties {
		if c.SASLMechanism == AWSMSKIAM && (k == "security.protocol" || strings.HasPrefix(k, "sasl.")) {
			// config.Validate refuses it, naming the setting.
			return nil, backfill.Errorf(backfill.KindInternal, "internal error: kafka property %s would replace what SASL mechanism %s sets", k, AWSMSKIAM)
		}
		if want, ok := own[k]; forced && ok && v != want {
			return nil, fmt.Errorf("kafka property %s=%s is not allowed: the backfill needs %s=%s", k, v, k, want)
		}
		m[k] = v
	}
	for k, v := range own {
		m[k] = v
	}
	return m, nil
}

// producerConfig is the producer's librdkafka configuration: the
// connection, the producer's tuning, the user's Properties (which may
// change the tuning) and forcedProperties.
func (c Config) producerConfig() (ckafka.ConfigMap, error) {
	m, err := c.connection("ordermin-backfill")
	if err != nil {
		return nil, err
	}
	tuning := ckafka.ConfigMap{
		"compression.type":                      orDefault(c.Compression, "lz4"),
		"linger.ms":                             strconv.FormatFloat(c.lingerMS(), 'g', -1, 64), // a string, so that 0 is kept below
		"batch.size":                            c.BatchBytes,
		"message.timeout.ms":                    int(c.MessageTimeout / time.Millisecond),
		"queue.buffering.max.messages":          c.QueueMaxMessages,
		"queue.buffering.max.kbytes":            c.QueueMaxKBytes,
		"max.in.flight.requests.per.connection": 5,
		"go.delivery.report.fields":             "none",
		// Small Go-side channels: their buffers are allocated up front and
		// the delivery goroutine drains them at once (1 M entries by default).
		"go.events.channel.size":  10000,
		"go.produce.channel.size": 1000,
		"go.logs.channel.enable":  true,
	}
	for k, v := range tuning {
		if n, ok := v.(int); ok && n <= 0 {
			continue // librdkafka default
		}
		m[k] = v
	}
	return c.withProperties(m, forcedProperties, true)
}

// consumerConfig is the configuration of a consumer the job assigns
// partitions to and that commits nothing: the connection, the user's
// Properties (librdkafka ignores, with a warning, any that only a producer
// takes) and the consumer's own settings.
func (c Config) consumerConfig(clientID, isolation, offsetReset string) (ckafka.ConfigMap, error) {
	m, err := c.connection(clientID)
	if err != nil {
		return nil, err
	}
	return c.withProperties(m, map[string]string{
		"group.id":             clientID, // never joined nor committed: partitions are assigned
		"enable.auto.commit":   "false",
		"enable.partition.eof": "true",
		"isolation.level":      isolation,
		"auto.offset.reset":    offsetReset,
	}, false)
}

// lingerMS is Linger in milliseconds, fractions and 0 included (librdkafka
// takes a double).
func (c Config) lingerMS() float64 { return float64(c.Linger) / float64(time.Millisecond) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// describe returns the non-secret settings for logs.
func (c Config) describe() []any {
	if c.SASLMechanism == AWSMSKIAM {
		return append(c.describeCommon(), "aws_region", c.AWSRegion)
	}
	return c.describeCommon()
}

func (c Config) describeCommon() []any {
	return []any{"brokers", strings.Join(c.Brokers, ","), "topic", c.Topic, "security_protocol", orDefault(c.SecurityProtocol, "PLAINTEXT"),
		"sasl_mechanism", c.SASLMechanism, "compression", orDefault(c.Compression, "lz4"), "linger_ms", strconv.FormatFloat(c.lingerMS(), 'g', -1, 64)}
}
