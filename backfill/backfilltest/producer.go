package backfilltest

import (
	"context"
	"sync"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Record is one produced key and value.
type Record struct{ Key, Value []byte }

// Producer records what it is given and acknowledges it at once, unless
// told to fail.
type Producer struct {
	mu      sync.Mutex
	records []Record
	d       backfill.Deliveries
	// Keep stores copies of the records (off for benchmarks).
	Keep bool
	// FailDeliveries makes every delivery fail with this reason.
	FailDeliveries string
	// Hold keeps deliveries unacknowledged (as a broker that stopped answering).
	Hold bool
}

// Produce implements backfill.Producer.
func (p *Producer) Produce(ctx context.Context, key, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.d.Failed > 0 {
		return backfill.Errorf(backfill.KindProduce, "a record failed delivery: %s", p.FailDeliveries)
	}
	if p.Keep {
		p.records = append(p.records, Record{append([]byte(nil), key...), append([]byte(nil), value...)})
	}
	p.d.Produced++
	switch {
	case p.Hold:
	case p.FailDeliveries != "":
		p.d.Failed++
		if len(p.d.Errors) < 5 {
			p.d.Errors = append(p.d.Errors, p.FailDeliveries)
		}
	default:
		p.d.Acked++
	}
	return nil
}

// Flush implements backfill.Producer: held records stay undelivered until ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	if p.Deliveries().Undelivered() == 0 {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// Deliveries implements backfill.Producer.
func (p *Producer) Deliveries() backfill.Deliveries {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.d
	d.Errors = append([]string(nil), d.Errors...)
	return d
}

// Records returns the kept records.
func (p *Producer) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.records...)
}
