// Package stack runs the whole backfill flow on one machine, in process:
// a kfake Kafka cluster, the BigQuery emulator seeded with a synthetic
// orders table, and the Schema Registry and ksqlDB doubles holding the
// first-order pipeline's stream and table. The sandbox command and the
// end-to-end tests use it; the job's binary never links it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/bigquery-emulator/server"
	"github.com/goccy/bigquery-emulator/types"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// Names of the sandbox's objects.
const (
	Project = "sandbox-project"
	Dataset = "shop"
	Table   = "orders"
	Topic   = "STREAM.ORDER.INSERT"
)

// The schemas ksqlDB registers for the stream when CREATE STREAM runs: the
// bare primitive "long" for the key, a KsqlDataSourceSchema record with a
// nullable ORDER_ID for the value.
var (
	KeySchema   = backfilltest.KsqlKeySchema
	ValueSchema = backfilltest.KsqlValueSchema
)

// Options size and shape the sandbox.
type Options struct {
	Users         int           // distinct users (default 2000)
	OrdersPerUser int           // at most this many orders per user (default 4)
	NullUsers     int           // rows with a NULL user (default 3)
	Seed          uint64        // data seed (default 1)
	Partitions    int32         // partitions of the stream's topic (default 3)
	KsqlLag       time.Duration // how long ksqlDB takes to process a record it fetched
	// KsqlRate is how many records a second ksqlDB's table query
	// aggregates; 0 is unlimited.
	KsqlRate int
	// KsqlCommitInterval is how often the table query commits its
	// offsets; default 2s, ksqlDB's commit.interval.ms.
	KsqlCommitInterval time.Duration
	// KsqlPaused starts ksqlDB's table query stopped (see KsqlDB.Resume).
	KsqlPaused bool
	// KsqlOtherReaders are further queries reading the stream, e.g. the
	// CSAS of stream_min_order.
	KsqlOtherReaders []string
	// KsqlVersion is the ksqlDB release the double answers as (its
	// profile, see ksqlfake.ProfileFor); default 0.29.0.
	KsqlVersion string
	// KsqlTLS serves ksqlDB over https with HTTP/2 offered by ALPN, as
	// ksqlDB's TLS listener does; the job trusts its certificate.
	KsqlTLS bool
	// NoStream leaves out the ksqlDB stream's registry subjects (a missing-subject run).
	NoSubjects bool
}

func (o *Options) defaults() {
	if o.Users == 0 {
		o.Users = 2000
	}
	if o.OrdersPerUser == 0 {
		o.OrdersPerUser = 4
	}
	if o.NullUsers == 0 {
		o.NullUsers = 3
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Partitions == 0 {
		o.Partitions = 3
	}
}

// Stack is a running sandbox.
type Stack struct {
	Options Options
	Orders  []Order // the rows of the orders table

	Kafka    *kfake.Cluster
	Registry *srfake.Server
	KsqlDB   *ksqlfake.Server

	BigQueryURL string // REST endpoint of the emulator
	StorageAddr string // Storage Read API gRPC endpoint (plaintext)
	ksqlCAFile  string // the ksqlDB double's certificate, with KsqlTLS
	bq          *server.Server
	bqDone      chan error
}

// Start starts every component on 127.0.0.1 with free ports. Close stops
// them and removes what they wrote.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	opts.defaults()
	s := &Stack{Options: opts, Orders: Orders(opts.Users, opts.OrdersPerUser, opts.NullUsers, opts.Seed)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.startBigQuery(ctx); err != nil {
		return nil, fmt.Errorf("starting the BigQuery emulator: %w", err)
	}
	if s.Kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(opts.Partitions, Topic), kfake.SeedTopics(1, "TABLE.MIN_ORDER")); err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	s.Registry = srfake.New()
	if !opts.NoSubjects {
		// What ksqlDB's CREATE STREAM registers.
		if _, err := s.Registry.Register(Topic+"-key", KeySchema); err != nil {
			return nil, err
		}
		if _, err := s.Registry.Register(Topic+"-value", ValueSchema); err != nil {
			return nil, err
		}
	}
	s.KsqlDB, err = ksqlfake.New(ksqlfake.Config{
		Brokers: s.Kafka.ListenAddrs(), Registry: s.Registry, RegistryURL: s.Registry.URL(),
		Topic: Topic, Lag: opts.KsqlLag, Rate: opts.KsqlRate, CommitInterval: opts.KsqlCommitInterval, Paused: opts.KsqlPaused,
		OtherReaders: opts.KsqlOtherReaders, Version: opts.KsqlVersion, TLS: opts.KsqlTLS,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the ksqlDB double: %w", err)
	}
	if opts.KsqlTLS {
		f, err := os.CreateTemp("", "ksqldb-ca-*.pem")
		if err != nil {
			return nil, err
		}
		s.ksqlCAFile = f.Name()
		_, err = f.Write(s.KsqlDB.CertPEM())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("writing the ksqlDB double's certificate: %w", err)
		}
	}
	return s, nil
}

// Close stops every component.
func (s *Stack) Close() {
	if s.KsqlDB != nil {
		s.KsqlDB.Close()
	}
	if s.ksqlCAFile != "" {
		os.Remove(s.ksqlCAFile)
	}
	if s.Registry != nil {
		s.Registry.Close()
	}
	if s.Kafka != nil {
		s.Kafka.Close()
	}
	if s.bq != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.bq.Stop(ctx)
		cancel()
		<-s.bqDone
	}
}

// Expected returns MIN(order_id) per user: what the table must hold.
func (s *Stack) Expected() map[int64]int64 { return MinOrders(s.Orders) }

// Settings returns the job's settings (dotted names) for this stack.
func (s *Stack) Settings() map[string]string {
	settings := map[string]string{
		"bigquery.project":           Project,
		"bigquery.table":             Project + "." + Dataset + "." + Table,
		"bigquery.endpoint":          s.BigQueryURL,
		"bigquery.storage_endpoint":  s.StorageAddr,
		"bigquery.storage_plaintext": "true",
		// The emulator's query jobs have no anonymous result table, and its
		// CreateReadSession refuses more than one stream (bigquery-emulator
		// v0.6.6 server/storage_handler.go): the job writes the result to a
		// table and reads it through one stream.
		"bigquery.destination_table": Project + "." + Dataset + ".backfill_result",
		"bigquery.read_streams":      "1",
		"kafka.brokers":              strings.Join(s.Kafka.ListenAddrs(), ","),
		"kafka.topic":                Topic,
		"schema_registry.url":        s.Registry.URL(),
		"ksqldb.url":                 s.KsqlDB.URL(),
		"ksqldb.verify":              "full",
		"ksqldb.stall_timeout":       "30s",
		"log.format":                 "text",
	}
	if s.ksqlCAFile != "" {
		settings["ksqldb.tls_ca_file"] = s.ksqlCAFile
	}
	return settings
}

// Args returns Settings as command-line flags, sorted.
func (s *Stack) Args() []string {
	var out []string
	for k, v := range s.Settings() {
		out = append(out, "--"+strings.NewReplacer(".", "-", "_", "-").Replace(k)+"="+v)
	}
	sort.Strings(out)
	return out
}

// ConfigYAML returns Settings as a YAML config file for the backfill.
func (s *Stack) ConfigYAML() string {
	sections := map[string][]string{}
	for k, v := range s.Settings() {
		sec, name, _ := strings.Cut(k, ".")
		sections[sec] = append(sections[sec], fmt.Sprintf("  %s: %s", name, strconv.Quote(v)))
	}
	var names []string
	for n := range sections {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		sort.Strings(sections[n])
		fmt.Fprintf(&b, "%s:\n%s\n", n, strings.Join(sections[n], "\n"))
	}
	return b.String()
}

func (s *Stack) startBigQuery(ctx context.Context) error {
	bq, err := server.New(server.TempStorage)
	if err != nil {
		return err
	}
	rows := make(types.Data, len(s.Orders))
	for i, o := range s.Orders {
		var uid any
		if o.UserID != nil {
			uid = *o.UserID
		}
		rows[i] = map[string]any{"user_id": uid, "order_id": o.OrderID}
	}
	table := types.NewTable(Table, []*types.Column{
		types.NewColumn("user_id", types.INT64),
		types.NewColumn("order_id", types.INT64),
	}, rows)
	if err := bq.Load(server.StructSource(types.NewProject(Project, types.NewDataset(Dataset, table)))); err != nil {
		bq.Close()
		return err
	}
	if err := bq.SetProject(Project); err != nil {
		bq.Close()
		return err
	}
	httpAddr, grpcAddr, err := freeAddrs()
	if err != nil {
		bq.Close()
		return err
	}
	bq.Handler = jobIDs(truncateOnWrite(bq.Handler))
	s.bq, s.bqDone = bq, make(chan error, 1)
	go func() { s.bqDone <- bq.Serve(context.Background(), httpAddr, grpcAddr) }()
	s.BigQueryURL, s.StorageAddr = "http://"+httpAddr, grpcAddr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.BigQueryURL + "/projects/" + Project + "/datasets")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-s.bqDone:
			s.bq = nil
			return errors.Join(errors.New("emulator stopped"), err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator did not answer on %s within 30s: %v", httpAddr, err)
		}
	}
}

// freeAddrs picks two free loopback ports for the emulator, which listens itself.
func freeAddrs() (string, string, error) {
	var addrs []string
	var ls []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs[0], addrs[1], nil
}
