package schemaregistry

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
)

var keyLong, valueV1, valueV2 = backfilltest.KsqlKeySchema, backfilltest.KsqlValueSchema, backfilltest.KsqlValueSchemaV2

func register(t *testing.T, s *srfake.Server, subject, schema string) int {
	t.Helper()
	id, err := s.Register(subject, schema)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFetchLatest(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	got := mustFetch(t, Config{URL: s.URL()})
	want := backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: keySubj, Version: 1, ID: 1, Schema: keyLong},
		Value: backfill.RegisteredSchema{Subject: valSubj, Version: 2, ID: 3, Schema: valueV2},
	}
	if got != want {
		t.Errorf("Fetch = %+v\nwant %+v", got, want)
	}
	if _, err := backfill.NewCodec(got); err != nil {
		t.Errorf("the ksqlDB schemas fetched from the registry fail NewCodec: %v", err)
	}
}

func TestFetchPinnedVersion(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	got := mustFetch(t, Config{URL: s.URL(), KeySchema: "1", ValueSchema: "1"})
	if got.Value.Version != 1 || got.Value.ID != 2 || got.Value.Schema != valueV1 || got.Key.ID != 1 {
		t.Errorf("Fetch = %+v, want value v1 id 2 and key id 1", got)
	}
	_, err := fetch(t, Config{URL: s.URL(), ValueSchema: "7"})
	wantKind(t, err, backfill.KindContract, "version 7", valSubj, "schema_registry.value_schema")
}

func TestFetchPinnedID(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	register(t, s, "OTHER-key", keyLong) // the key id is shared with another subject
	got := mustFetch(t, Config{URL: s.URL(), KeySchema: "id:1", ValueSchema: "id:2"})
	want := backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: keySubj, Version: 1, ID: 1, Schema: keyLong},
		Value: backfill.RegisteredSchema{Subject: valSubj, Version: 1, ID: 2, Schema: valueV1},
	}
	if got != want {
		t.Errorf("Fetch = %+v\nwant %+v", got, want)
	}
}

func TestFetchIDNotUnderSubject(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	id := register(t, s, "OTHER-value", otherVal)
	_, err := fetch(t, Config{URL: s.URL(), ValueSchema: "id:" + strconv.Itoa(id)})
	wantKind(t, err, backfill.KindContract, "not registered under subject", valSubj, "OTHER-value v1")

	_, err = fetch(t, Config{URL: s.URL(), ValueSchema: "id:99"})
	wantKind(t, err, backfill.KindContract, "schema id 99", "schema_registry.value_schema")
}

func TestFetchMissingSubject(t *testing.T) {
	t.Parallel()
	s := srfake.New()
	defer s.Close()
	_, err := fetch(t, Config{URL: s.URL()})
	wantKind(t, err, backfill.KindContract, keySubj, "CREATE STREAM", s.URL())

	register(t, s, keySubj, keyLong)
	_, err = fetch(t, Config{URL: s.URL()})
	wantKind(t, err, backfill.KindContract, valSubj, "CREATE STREAM")
}

func TestWrongKeyShapeIsFetchedAndRejectedByCodec(t *testing.T) {
	t.Parallel()
	s := srfake.New()
	defer s.Close()
	register(t, s, keySubj, `{"type":"record","name":"Key","fields":[{"name":"ACCOUNT_ID","type":"long"}]}`)
	register(t, s, valSubj, valueV1)
	got := mustFetch(t, Config{URL: s.URL()})
	if !strings.Contains(got.Key.Schema, `"record"`) {
		t.Fatalf("key schema = %s", got.Key.Schema)
	}
	_, err := backfill.NewCodec(got)
	wantKind(t, err, backfill.KindContract, keySubj)
}

// A key subject whose latest version is not ksqlDB's own bare "long": the
// default selector takes ksqlDB's, an explicit one naming another id is a
// contract error that names the id to use.
func TestKeyIsTheSchemaKsqlDBSerializesWith(t *testing.T) {
	t.Parallel()
	s := ksqlRegistry(t)
	other := register(t, s, keySubj, `{"type":"long","connect.name":"other"}`) // now the latest key version
	got := mustFetch(t, Config{URL: s.URL()})
	if got.Key.ID != 1 || got.Key.Version != 1 {
		t.Errorf("default selector: key %+v; want ksqlDB's own id 1 (version 1), not the latest id %d", got.Key, other)
	}
	_, err := fetch(t, Config{URL: s.URL(), KeySchema: "id:" + strconv.Itoa(other)})
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), `"id:1"`) {
		t.Errorf("explicit id %d: %v; want a contract error naming id:1", other, err)
	}
	if got := mustFetch(t, Config{URL: s.URL(), KeySchema: "1"}); got.Key.ID != 1 {
		t.Errorf("version 1: key %+v", got.Key)
	}
	// Before ksqlDB registered the bare primitive, the selected schema stays.
	bare := srfake.New()
	t.Cleanup(bare.Close)
	register(t, bare, keySubj, `{"type":"long","connect.name":"x"}`)
	register(t, bare, valSubj, valueV1)
	if got := mustFetch(t, Config{URL: bare.URL()}); got.Key.ID != 1 {
		t.Errorf("no bare long: key %+v", got.Key)
	}
}
