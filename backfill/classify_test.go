package backfill_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// failingFilter is a delta filter that fails with err.
type failingFilter struct{ err error }

func (f failingFilter) Keep(context.Context, []backfill.KeyValue, []bool) error { return f.err }

// failingProducer fails every Produce with err.
type failingProducer struct {
	backfilltest.Producer
	err error
}

func (p *failingProducer) Produce(context.Context, []byte, []byte) error { return p.err }

// TestPortFailuresKeepTheirKind: a failure of the source, the delta filter
// or the producer keeps the kind its adapter gave it, internal (a bug)
// included; only an unclassified one takes the port's default.
func TestPortFailuresKeepTheirKind(t *testing.T) {
	t.Parallel()
	ports := []struct {
		name string
		def  backfill.Kind // an unclassified failure's kind
		set  func(p *backfill.Pipeline, err error)
	}{
		{"open", backfill.KindSource, func(p *backfill.Pipeline, err error) { p.Source = &backfilltest.Source{Rows: 10, OpenErr: err} }},
		{"read", backfill.KindSource, func(p *backfill.Pipeline, err error) {
			p.Source = &backfilltest.Source{Rows: 100, FailAt: 50, FailErr: err}
		}},
		{"filter", backfill.KindUnavailable, func(p *backfill.Pipeline, err error) { p.Filter = failingFilter{err} }},
		{"produce", backfill.KindProduce, func(p *backfill.Pipeline, err error) { p.Producer = &failingProducer{err: err} }},
	}
	failures := []struct {
		name string
		err  error
		want func(def backfill.Kind) backfill.Kind
	}{
		{"unclassified", errors.New("connection reset"), func(def backfill.Kind) backfill.Kind { return def }},
		{"internal", backfill.Errorf(backfill.KindInternal, "internal error: a bug"), func(backfill.Kind) backfill.Kind { return backfill.KindInternal }},
		{"contract", backfill.Errorf(backfill.KindContract, "column x is a STRING"), func(backfill.Kind) backfill.Kind { return backfill.KindContract }},
	}
	for _, port := range ports {
		for _, f := range failures {
			t.Run(port.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				p := pipeline(t, &backfilltest.Source{Rows: 100}, &backfilltest.Producer{})
				port.set(p, f.err)
				err := p.Run(context.Background(), &backfill.Report{})
				if want := f.want(port.def); backfill.KindOf(err) != want {
					t.Fatalf("kind %v, want %v: %v", backfill.KindOf(err), want, err)
				}
				if !errors.Is(err, f.err) {
					t.Fatalf("the error does not wrap the port's failure %q: %v", f.err, err)
				}
			})
		}
	}
}

// TestKindOf: an error no boundary classified has its own kind, reported
// as internal; Or gives it a default and keeps every other kind.
func TestKindOf(t *testing.T) {
	t.Parallel()
	if k := backfill.KindOf(errors.New("plain")); k != backfill.KindUnclassified || k == backfill.KindInternal {
		t.Fatalf("a plain error's kind is %v", k)
	}
	if k := backfill.KindOf(nil); k != backfill.KindUnclassified {
		t.Fatalf("nil's kind is %v", k)
	}
	if c, s := backfill.KindUnclassified.ExitCode(), backfill.KindUnclassified.String(); c != backfill.ExitInternal || s != "internal" {
		t.Fatalf("unclassified: exit %d, %q; want 1, internal", c, s)
	}
	if k := backfill.KindUnclassified.Or(backfill.KindSource); k != backfill.KindSource {
		t.Fatalf("Or on unclassified = %v", k)
	}
	if k := backfill.KindInternal.Or(backfill.KindSource); k != backfill.KindInternal {
		t.Fatalf("Or on internal = %v", k)
	}
}
