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
// In sample mode it keeps a bottom-k sample of N keys: the N keys with
// the smallest seeded hash, a uniform sample of the distinct keys
// observed. A key in the final sample was in it from its first record on,
// so the recorder has seen every copy of every sampled key: its smallest
// value and how many records carried it. In full mode it keeps every
// record as a 16-byte backfill.KeyValue, duplicates folded to their MIN
// value when Keys is called; in none mode nothing.
type Recorder struct {
	mode VerifyMode
	size int
	seed uint64

	mu       sync.Mutex
	observed int64
	kv       []backfill.KeyValue // full mode: every record
	sample   sampleHeap          // sample mode: a max-heap on hash
	slot     map[int64]int       // sample mode: key -> heap index
	dups     Duplicates          // full mode: found by Keys
}

// Duplicates counts keys that were sent more than once: over every
// record in full mode, over the sampled keys in sample mode.
type Duplicates struct {
	Keys    int64   // keys carried by more than one record
	Records int64   // records beyond the first of each such key
	Sample  bool    // counted over the sample only
	First   []int64 // some of those keys, smallest first
}

// maxDuplicateExamples bounds Duplicates.First.
const maxDuplicateExamples = 10

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
		r.size, r.seed = sampleSize, seed
		r.sample = make(sampleHeap, 0, min(sampleSize, 1<<16))
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
			r.offer(rec)
		}
	}
}

// offer adds rec to the sample when its key's hash is among the size
// smallest seen; a key already in it keeps its smaller value and counts
// one more record.
func (r *Recorder) offer(rec backfill.KeyValue) {
	h := mix(uint64(rec.Key) ^ r.seed)
	full := len(r.sample) == r.size
	if full && h > r.sample[0].hash {
		return // neither in the sample nor entering it
	}
	if i, ok := r.slot[rec.Key]; ok {
		e := &r.sample[i]
		e.kv.Value = min(e.kv.Value, rec.Value)
		e.records++
		return
	}
	e := sampled{kv: rec, hash: h, records: 1}
	if !full {
		r.slot[rec.Key] = len(r.sample)
		r.sample = append(r.sample, e)
		r.sample.up(len(r.sample)-1, r.slot)
		return
	}
	delete(r.slot, r.sample[0].kv.Key)
	r.sample[0] = e
	r.slot[rec.Key] = 0
	r.sample.down(0, r.slot)
}

// Keys returns the records to verify: unique keys sorted ascending, each
// with the smallest value sent for it. In full mode the recorder's storage
// is compacted in place and the keys sent more than once are counted for
// Duplicates; call Keys once, after the last ObserveBatch.
func (r *Recorder) Keys() []backfill.KeyValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mode {
	case ModeNone:
		return nil
	case ModeSample:
		out := make([]backfill.KeyValue, len(r.sample))
		for i, e := range r.sample {
			out[i] = e.kv
		}
		slices.SortFunc(out, func(a, b backfill.KeyValue) int { return cmp.Compare(a.Key, b.Key) })
		return out
	}
	out := r.kv
	slices.SortFunc(out, func(a, b backfill.KeyValue) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].Key == out[i].Key {
			j++
		}
		if j-i > 1 {
			r.dups.Keys++
			r.dups.Records += int64(j - i - 1)
			if len(r.dups.First) < maxDuplicateExamples {
				r.dups.First = append(r.dups.First, out[i].Key)
			}
		}
		i = j
	}
	out = slices.CompactFunc(out, func(a, b backfill.KeyValue) bool { return a.Key == b.Key })
	r.kv = out
	return out
}

// Duplicates returns the keys sent more than once: in full mode as Keys
// found them, in sample mode among the sampled keys.
func (r *Recorder) Duplicates() Duplicates {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode != ModeSample {
		d := r.dups
		d.First = slices.Clone(d.First)
		return d
	}
	d := Duplicates{Sample: true}
	for _, e := range r.sample {
		if e.records > 1 {
			d.Keys++
			d.Records += e.records - 1
			d.First = append(d.First, e.kv.Key)
		}
	}
	slices.Sort(d.First)
	if len(d.First) > maxDuplicateExamples {
		d.First = d.First[:maxDuplicateExamples]
	}
	return d
}
