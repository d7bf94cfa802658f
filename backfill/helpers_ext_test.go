package backfill_test

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

func pipeline(t testing.TB, src backfill.Source, prod backfill.Producer) *backfill.Pipeline {
	return &backfill.Pipeline{
		Source: src, Codec: codec(t), Mapping: backfill.Mapping{KeyColumn: "user_id"}, Producer: prod,
		Workers: 4, BatchSize: 7, FlushTimeout: time.Second, DrainTimeout: 100 * time.Millisecond,
	}
}

// collector is an Observer that keeps everything it sees.
type collector struct {
	mu   sync.Mutex
	seen map[int64]int64
}

func (c *collector) ObserveBatch(kvs []backfill.KeyValue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, kv := range kvs {
		c.seen[kv.Key] = kv.Value
	}
}

func zigzag(b []byte) int64 {
	u, _ := binary.Uvarint(b)
	return int64(u>>1) ^ -int64(u&1)
}
