package ksqldb

import "github.com/ordermin/ordermin-backfill/backfill"

// sampled is one key of a bottom-k sample.
type sampled struct {
	kv      backfill.KeyValue // the key and the smallest value sent for it
	hash    uint64
	records int64 // records that carried the key
}

// sampleHeap is a max-heap of sampled keys on hash; slot maps each key to
// its index and is kept current as entries move.
type sampleHeap []sampled

func (h sampleHeap) swap(i, j int, slot map[int64]int) {
	h[i], h[j] = h[j], h[i]
	slot[h[i].kv.Key], slot[h[j].kv.Key] = i, j
}

func (h sampleHeap) up(i int, slot map[int64]int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].hash >= h[i].hash {
			return
		}
		h.swap(i, p, slot)
		i = p
	}
}

func (h sampleHeap) down(i int, slot map[int64]int) {
	for {
		l, big := 2*i+1, i
		if l < len(h) && h[l].hash > h[big].hash {
			big = l
		}
		if r := l + 1; r < len(h) && h[r].hash > h[big].hash {
			big = r
		}
		if big == i {
			return
		}
		h.swap(i, big, slot)
		i = big
	}
}

// mix is SplitMix64's finalizer: a bijection on uint64 whose output bits
// each depend on every input bit, so a seeded key's hash orders keys at
// random and two keys never share a hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
