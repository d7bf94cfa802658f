package bench

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ordermin/ordermin-backfill/config"
)

// Tuning overrides production defaults for experiments; the zero value
// means config.Default() everywhere, which is what the published figures
// use.
type Tuning struct {
	Workers       int
	BatchSize     int
	Linger        time.Duration
	BatchBytes    int
	QueueMessages int
	QueueKBytes   int
	Compression   string
	Properties    propertyList // extra librdkafka properties, k=v
	NoRunHeader   bool         // kafka.run_header=false
	RESTPageRows  int          // read-rest's rows per getQueryResults page (0: bigquery.DefaultRESTPageRows)
}

// propertyList is a repeatable -property k=v flag.
type propertyList []string

func (l *propertyList) String() string { return strings.Join(*l, ",") }

func (l *propertyList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	*l = append(*l, v)
	return nil
}

func (t *Tuning) register(fs *flag.FlagSet) {
	fs.IntVar(&t.Workers, "workers", 0, "override pipeline.workers (experiments; 0 = config.Default())")
	fs.IntVar(&t.BatchSize, "batch-size", 0, "override pipeline.batch_size (experiments)")
	fs.DurationVar(&t.Linger, "linger", 0, "override kafka.linger (experiments)")
	fs.IntVar(&t.BatchBytes, "batch-bytes", 0, "override kafka.batch_bytes (experiments)")
	fs.IntVar(&t.QueueMessages, "queue-messages", 0, "override kafka.queue_max_messages (experiments)")
	fs.IntVar(&t.QueueKBytes, "queue-kbytes", 0, "override kafka.queue_max_kbytes (experiments)")
	fs.StringVar(&t.Compression, "compression", "", "override kafka.compression (experiments)")
	fs.Var(&t.Properties, "property", "extra librdkafka property key=value, repeatable (experiments)")
	fs.BoolVar(&t.NoRunHeader, "no-run-header", false, "kafka.run_header=false: records without the run header (experiments)")
	fs.IntVar(&t.RESTPageRows, "rest-page-rows", 0, "read-rest's rows per jobs.getQueryResults page (experiments; 0 = bigquery.DefaultRESTPageRows)")
}

// args returns the flags that pass t on to a child.
func (t Tuning) args() []string {
	var out []string
	add := func(name string, set bool, v any) {
		if set {
			out = append(out, fmt.Sprintf("-%s=%v", name, v))
		}
	}
	add("workers", t.Workers > 0, t.Workers)
	add("batch-size", t.BatchSize > 0, t.BatchSize)
	add("linger", t.Linger > 0, t.Linger)
	add("batch-bytes", t.BatchBytes > 0, t.BatchBytes)
	add("queue-messages", t.QueueMessages > 0, t.QueueMessages)
	add("queue-kbytes", t.QueueKBytes > 0, t.QueueKBytes)
	add("compression", t.Compression != "", t.Compression)
	add("no-run-header", t.NoRunHeader, true)
	add("rest-page-rows", t.RESTPageRows > 0, t.RESTPageRows)
	for _, p := range t.Properties {
		add("property", true, p)
	}
	return out
}

func (t Tuning) String() string {
	if a := t.args(); len(a) > 0 {
		return strings.Join(a, " ")
	}
	return "none (production defaults)"
}

// apply returns the production defaults with t's overrides.
func (t Tuning) apply() config.Config {
	c := config.Default()
	if t.Workers > 0 {
		c.Pipeline.Workers = t.Workers
	}
	if t.BatchSize > 0 {
		c.Pipeline.BatchSize = t.BatchSize
	}
	if t.Linger > 0 {
		c.Kafka.Linger = t.Linger
	}
	if t.BatchBytes > 0 {
		c.Kafka.BatchBytes = t.BatchBytes
	}
	if t.QueueMessages > 0 {
		c.Kafka.QueueMaxMessages = t.QueueMessages
	}
	if t.QueueKBytes > 0 {
		c.Kafka.QueueMaxKBytes = t.QueueKBytes
	}
	if t.Compression != "" {
		c.Kafka.Compression = t.Compression
	}
	if t.NoRunHeader {
		c.Kafka.RunHeader = false
	}
	if len(t.Properties) > 0 {
		props := make(map[string]string, len(c.Kafka.Properties)+len(t.Properties))
		for k, v := range c.Kafka.Properties {
			props[k] = v
		}
		for _, p := range t.Properties {
			k, v, _ := strings.Cut(p, "=")
			props[k] = v
		}
		c.Kafka.Properties = props
	}
	return c
}
