package bigquery

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

// bufferPool is a memory.Allocator that reuses the buffers of decoded
// record batches. Every batch is copied out (NextColumns) and
// released before the next, so a handful of buffers per stream serve the
// whole read instead of two fresh allocations per column and response,
// which the collector would then have to reclaim.
//
// Buffers come in power-of-two sizes of at least 64 bytes; Go allocates
// those at an address aligned to their size, which gives Arrow its 64-byte
// alignment. A buffer is zeroed when it is handed out again.
type bufferPool struct {
	classes [64]sync.Pool
}

var _ memory.Allocator = (*bufferPool)(nil)

const minClass = 6 // 64 bytes

func sizeClass(size int) int {
	return max(minClass, bits.Len(uint(size-1)))
}

// Allocate implements memory.Allocator.
func (p *bufferPool) Allocate(size int) []byte {
	if size <= 0 {
		return []byte{}
	}
	c := sizeClass(size)
	if v, ok := p.classes[c].Get().(*[]byte); ok {
		b := (*v)[:size]
		clear(b)
		return b
	}
	return make([]byte, size, 1<<c)
}

// Reallocate implements memory.Allocator.
func (p *bufferPool) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:])
		}
		return b
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free implements memory.Allocator.
func (p *bufferPool) Free(b []byte) {
	c := cap(b)
	if c < 1<<minClass || c&(c-1) != 0 {
		return // not one of the pool's buffers
	}
	b = b[:c]
	p.classes[bits.Len(uint(c-1))].Put(&b)
}
