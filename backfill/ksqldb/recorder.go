package ksqldb

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// VerifyMode is what a Recorder keeps and Verify checks.
type VerifyMode string

// Verification modes.
const (
	ModeSample VerifyMode = "sample" // a uniform random sample of the keys (the default)
	ModeFull   VerifyMode = "full"   // every key
	ModeNone   VerifyMode = "none"   // no verification
)

// DefaultSampleSize is the sample size when none is given.
const DefaultSampleSize = 1000

// MaxFullKeys bounds full verification: the recorder keeps 16 bytes per
// record, 160 MB for 10 M records when the result's size is known and
// reserved up front (Reserve), within the Job's 512 MiB limit
// (`make bench`'s verify-full scenario measures it).
const MaxFullKeys = 10_000_000

// Recorder remembers what was sent, for Verify. It implements
// backfill.Observer and is safe for concurrent use.
//
// In sample mode it keeps a reservoir sample (algorithm R) of N keys over
// all observed records; in full mode every record as a 16-byte
// backfill.KeyValue, duplicates folded to their MIN value when Keys is
// called; in none mode nothing.
type Recorder struct {
	mode VerifyMode
	size int

	mu       sync.Mutex
	observed int64
	offered  int64 // sample mode: distinct keys offered to the reservoir
	rng      *rand.Rand
	kv       []backfill.KeyValue // sample reservoir or every record
	slot     map[int64]int       // sample mode: key -> reservoir index
}

var _ backfill.Observer = (*Recorder)(nil)

// NewRecorder returns a recorder for mode (empty means sample).
// sampleSize 0 means DefaultSampleSize. seed makes the sample
// reproducible; 0 picks a random seed. The settings are validated where
// they are read (config.Validate): a mode that is not one of the
// constants or a negative sample size is a caller's bug, an internal
// error.
func NewRecorder(mode VerifyMode, sampleSize int, seed uint64) (*Recorder, error) {
	if mode == "" {
		mode = ModeSample
	}
	r := &Recorder{mode: mode}
	switch mode {
	case ModeSample:
		if sampleSize < 0 {
			return nil, backfill.Errorf(backfill.KindInternal, "internal error: verification sample size %d is negative", sampleSize)
		}
		if sampleSize == 0 {
			sampleSize = DefaultSampleSize
		}
		if seed == 0 {
			seed = rand.Uint64()
		}
		r.size = sampleSize
		r.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		r.kv = make([]backfill.KeyValue, 0, min(sampleSize, 1<<16))
		r.slot = make(map[int64]int, min(sampleSize, 1<<16))
	case ModeFull, ModeNone:
	default:
		return nil, backfill.Errorf(backfill.KindInternal, "internal error: verification mode %q is not one of %s, %s, %s", mode, ModeSample, ModeFull, ModeNone)
	}
	return r, nil
}

// Mode returns the recorder's mode.
func (r *Recorder) Mode() VerifyMode { return r.mode }

// Observed returns how many records the recorder has seen.
func (r *Recorder) Observed() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.observed
}

// Reserve makes room in full mode for n records at once, so that the
// recorder's storage never grows by copying: 16 bytes per record instead
// of up to twice that while a growing slice is copied. Other modes ignore
// it; an n beyond MaxFullKeys is not reserved.
func (r *Recorder) Reserve(n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode != ModeFull || n > MaxFullKeys || uint64(cap(r.kv)) >= n {
		return
	}
	r.kv = slices.Grow(r.kv, int(n)-len(r.kv))
}

// ObserveBatch records a batch of sent records.
func (r *Recorder) ObserveBatch(records []backfill.KeyValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed += int64(len(records))
	switch r.mode {
	case ModeFull:
		r.kv = append(r.kv, records...)
	case ModeSample:
		for _, rec := range records {
			r.sample(rec)
		}
	}
}

// sample offers rec to the reservoir; a key already in it keeps its
// smaller value.
func (r *Recorder) sample(rec backfill.KeyValue) {
	if i, ok := r.slot[rec.Key]; ok {
		r.kv[i].Value = min(r.kv[i].Value, rec.Value)
		return
	}
	n := len(r.slot) // keys in the reservoir
	if n < r.size {
		r.slot[rec.Key] = n
		r.kv = append(r.kv, rec)
		r.offered++
		return
	}
	r.offered++
	if j := r.rng.Int64N(r.offered); j < int64(r.size) {
		delete(r.slot, r.kv[j].Key)
		r.kv[j] = rec
		r.slot[rec.Key] = int(j)
	}
}

// Keys returns the records to verify: unique keys sorted ascending, each
// with the smallest value sent for it. In full mode the recorder's storage
// is compacted in place.
func (r *Recorder) Keys() []backfill.KeyValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == ModeNone {
		return nil
	}
	out := r.kv
	if r.mode == ModeSample {
		out = slices.Clone(r.kv)
	}
	slices.SortFunc(out, func(a, b backfill.KeyValue) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	out = slices.CompactFunc(out, func(a, b backfill.KeyValue) bool { return a.Key == b.Key })
	if r.mode == ModeFull {
		r.kv = out
	}
	return out
}
