// Package schemaregistry reads the key and value schemas that ksqlDB
// registered for a stream's topic from Confluent Schema Registry. It never
// registers schemas: a record must be written with the exact ids ksqlDB
// decodes with.
package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/riferrei/srclient"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// Config says where the registry is and which schemas to use.
type Config struct {
	URL                   string
	Username, Password    string // Password is a secret: never put it in an error or log
	TLSCAFile             string // PEM CA bundle added to the system roots
	TLSInsecureSkipVerify bool
	Timeout               time.Duration // per request; must be positive
	Retries               int           // retries on transport errors, 5xx and 429 (see httpc); 0 means none
	// KeySchema and ValueSchema select a schema: "latest" (also when empty),
	// a version number such as "3", or a global id such as "id:42".
	KeySchema, ValueSchema string
}

// Client fetches registered schemas. It is safe for concurrent use.
type Client struct {
	base       string // registry URL without userinfo or trailing slash
	user, pass string
	hc         httpc.Client // the shared retry policy with its default schedule, the timeout, redaction of pass
	key, value selector
}

type selectorKind int

const (
	selLatest selectorKind = iota
	selVersion
	selID
)

// selector is a parsed KeySchema/ValueSchema setting.
type selector struct {
	kind  selectorKind
	n     int
	field string // the setting's name, for messages
}

func parseSelector(field, s string) (selector, error) {
	sel, err := backfill.ParseSchemaSelector(s)
	switch {
	case err != nil:
		return selector{}, backfill.Errorf(backfill.KindConfig, "%s %w", field, err)
	case sel.ID > 0:
		return selector{kind: selID, n: sel.ID, field: field}, nil
	case sel.Version > 0:
		return selector{kind: selVersion, n: sel.Version, field: field}, nil
	}
	return selector{kind: selLatest, field: field}, nil
}

// New checks cfg and builds a client. It does not contact the registry.
func New(cfg Config) (*Client, error) {
	c := &Client{user: cfg.Username, pass: cfg.Password}
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, backfill.Errorf(backfill.KindConfig, "schema_registry.url is empty")
	}
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the wrapper repeats the URL, which may hold a password
		}
		return nil, backfill.Errorf(backfill.KindConfig, "schema_registry.url is not a valid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		u.User = nil
		return nil, backfill.Errorf(backfill.KindConfig, "schema_registry.url %q is not an http(s) URL such as http://schema-registry:8081", u.String())
	}
	if u.User != nil && c.user == "" {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	c.base = strings.TrimRight(u.String(), "/")
	if (c.user == "") != (c.pass == "") {
		return nil, backfill.Errorf(backfill.KindConfig, "schema_registry.username and schema_registry.password must be set together")
	}
	if cfg.Timeout <= 0 {
		return nil, backfill.Errorf(backfill.KindConfig, "schema_registry.timeout is %s; want a positive duration", cfg.Timeout)
	}
	if cfg.Retries < 0 {
		return nil, backfill.Errorf(backfill.KindConfig, "schema_registry.retries is %d; want 0 or more", cfg.Retries)
	}
	if c.key, err = parseSelector("schema_registry.key_schema", cfg.KeySchema); err != nil {
		return nil, err
	}
	if c.value, err = parseSelector("schema_registry.value_schema", cfg.ValueSchema); err != nil {
		return nil, err
	}
	tr, err := httpc.Transport("schema_registry", cfg.TLSCAFile, cfg.TLSInsecureSkipVerify)
	if err != nil {
		return nil, backfill.Errorf(backfill.KindConfig, "%w", err)
	}
	c.hc = httpc.Client{
		HTTP:     &http.Client{Transport: tr},
		Policy:   httpc.Policy{Retries: cfg.Retries},
		Timeout:  cfg.Timeout,
		Settings: "schema_registry",
		Secrets:  []string{c.pass},
	}
	return c, nil
}

// Fetch returns the key and value schemas of the subjects <topic>-key and
// <topic>-value (topic-name strategy), resolved by the configured selectors.
// The key is the one ksqlDB serializes keys with (see ksqlKey).
// Failures are *backfill.Error values: KindContract when a subject, version
// or id is missing, KindConfig for rejected credentials or a URL that is not
// a registry, KindUnavailable when the registry cannot be reached.
func (c *Client) Fetch(ctx context.Context, topic string) (backfill.Schemas, error) {
	if topic == "" {
		return backfill.Schemas{}, backfill.Errorf(backfill.KindConfig, "kafka.topic is empty: the schema subjects are named after it")
	}
	key, err := c.resolve(ctx, topic+"-key", c.key)
	if err != nil {
		return backfill.Schemas{}, err
	}
	if key, err = c.ksqlKey(ctx, key); err != nil {
		return backfill.Schemas{}, err
	}
	value, err := c.resolve(ctx, topic+"-value", c.value)
	if err != nil {
		return backfill.Schemas{}, err
	}
	return backfill.Schemas{Key: key, Value: value}, nil
}

// resolve fetches the schema sel selects under subject.
func (c *Client) resolve(ctx context.Context, subject string, sel selector) (backfill.RegisteredSchema, error) {
	var (
		s    *srclient.Schema
		err  error
		what string
	)
	switch sel.kind {
	case selLatest:
		what = fmt.Sprintf("the latest version of subject %q", subject)
		s, err = call(ctx, c, func(sr *srclient.SchemaRegistryClient) (*srclient.Schema, error) { return sr.GetLatestSchema(subject) })
	case selVersion:
		what = fmt.Sprintf("version %d of subject %q", sel.n, subject)
		s, err = call(ctx, c, func(sr *srclient.SchemaRegistryClient) (*srclient.Schema, error) {
			return sr.GetSchemaByVersion(subject, sel.n)
		})
	case selID:
		return c.resolveID(ctx, subject, sel)
	}
	if err != nil {
		return backfill.RegisteredSchema{}, c.explain(ctx, what, subject, sel, err)
	}
	return c.checked(subject, what, s.Version(), s)
}

// resolveID fetches schema id sel.n and checks that subject holds it.
func (c *Client) resolveID(ctx context.Context, subject string, sel selector) (backfill.RegisteredSchema, error) {
	what := fmt.Sprintf("schema id %d", sel.n)
	s, err := call(ctx, c, func(sr *srclient.SchemaRegistryClient) (*srclient.Schema, error) { return sr.GetSchema(sel.n) })
	if err != nil {
		return backfill.RegisteredSchema{}, c.explain(ctx, what, subject, sel, err)
	}
	pairs, err := call(ctx, c, func(sr *srclient.SchemaRegistryClient) (srclient.SubjectVersionResponse, error) {
		return sr.GetSubjectVersionsById(sel.n)
	})
	if err != nil {
		return backfill.RegisteredSchema{}, c.explain(ctx, "the subjects of "+what, subject, sel, err)
	}
	version, others := 0, []string{}
	for _, p := range pairs {
		if p.Subject == subject {
			version = max(version, p.Version)
		} else {
			others = append(others, fmt.Sprintf("%s v%d", p.Subject, p.Version))
		}
	}
	if version == 0 {
		under := "no subject"
		if len(others) > 0 {
			under = strings.Join(others, ", ")
		}
		return backfill.RegisteredSchema{}, backfill.Errorf(backfill.KindContract,
			"%s: schema id %d is not registered under subject %q (it is under %s); ksqlDB reads the topic with that subject's schemas: pick an id from GET /subjects/%s/versions or use \"latest\"",
			sel.field, sel.n, subject, under, subject)
	}
	return c.checked(subject, what, version, s)
}

// checked turns a fetched schema into a RegisteredSchema after checking
// that the registry gave an AVRO schema with an id.
func (c *Client) checked(subject, what string, version int, s *srclient.Schema) (backfill.RegisteredSchema, error) {
	if t := s.SchemaType(); t != nil && *t != "" && *t != srclient.Avro {
		return backfill.RegisteredSchema{}, backfill.Errorf(backfill.KindContract,
			"subject %q holds a %s schema; ksqlDB's key_format/value_format 'AVRO' registers AVRO schemas: recreate the stream with AVRO formats", subject, *t)
	}
	if s.ID() <= 0 || strings.TrimSpace(s.Schema()) == "" {
		return backfill.RegisteredSchema{}, backfill.Errorf(backfill.KindContract,
			"schema registry %s answered %s without a schema or id: check schema_registry.url", c.base, what)
	}
	return backfill.RegisteredSchema{Subject: subject, Version: version, ID: s.ID(), Schema: s.Schema()}, nil
}

// ksqlKey returns the key schema records must carry for ksqlDB to find
// them. ksqlDB serializes a key (for pull-query routing, and for the CDC
// query's INSERT INTO) with its own serializer, which registers the bare
// primitive of the key column's type, "long" or "int", under the subject
// and writes the id the registry gives that schema. Records are placed by
// murmur2 of the key bytes, id included, so a key written with any other
// id lands on a partition where ksqlDB never looks for it. With the default
// selector the subject's version holding that primitive is used, whatever
// the latest version is; an explicit selector that names another id is a
// contract error. When the subject does not hold the bare primitive yet
// (ksqlDB registers it on first use), the selected schema is kept.
func (c *Client) ksqlKey(ctx context.Context, sel backfill.RegisteredSchema) (backfill.RegisteredSchema, error) {
	parsed, err := avro.ParseWithCache(sel.Schema, "", &avro.SchemaCache{})
	if err != nil || (parsed.Type() != avro.Long && parsed.Type() != avro.Int) {
		return sel, nil // NewCodec explains what is wrong with it
	}
	bare := strconv.Quote(string(parsed.Type()))
	what := fmt.Sprintf("the schema %s under subject %q", bare, sel.Subject)
	own, err := call(ctx, c, func(sr *srclient.SchemaRegistryClient) (*srclient.Schema, error) {
		return sr.LookupSchema(sel.Subject, bare, srclient.Avro)
	})
	switch {
	case err != nil && status(err) == http.StatusNotFound:
		return sel, nil
	case err != nil:
		return backfill.RegisteredSchema{}, c.explain(ctx, what, sel.Subject, c.key, err)
	case own.ID() == sel.ID:
		return sel, nil
	case c.key.kind == selLatest:
		return c.checked(sel.Subject, what, own.Version(), own)
	}
	return backfill.RegisteredSchema{}, backfill.Errorf(backfill.KindContract,
		"%s selects key schema id %d (subject %q version %d), but ksqlDB serializes the stream's keys with its own schema %s, id %d (version %d): "+
			"pull queries and the CDC query place a user by murmur2 of those bytes, so records written with id %d would land on other partitions; set %s to \"id:%d\" or leave it unset",
		c.key.field, sel.ID, sel.Subject, sel.Version, bare, own.ID(), own.Version(), sel.ID, c.key.field, own.ID())
}
