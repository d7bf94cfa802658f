package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// RunHeader is the record header that names the run that wrote a record.
const RunHeader = "ordermin-backfill-run"

// ReadBackLimits bound a read-back.
type ReadBackLimits struct {
	MaxRecords int64         // stop after reading this many records; default 1,000,000
	Timeout    time.Duration // stop after this long; default 2m
	MaxKeys    int           // duplicated keys kept for the report; default 100
}

// ReadBack reads the records at the given offsets (inclusive ranges per
// partition: the offsets between the end offset before the run and the
// highest acknowledged one that the run did not acknowledge) and sorts
// them into duplicates (they carry runID in the RunHeader header: the
// broker stored one of this run's batches twice) and foreign records
// (written by someone else, e.g. CDC). It uses the producer's connection
// settings in a consumer of its own (read_committed) and commits nothing.
//
// The status is "checked" when every offset was read or found to hold no
// record, and "partial", with the reason, when some could not be: offsets
// below the log start (retention), offsets past the last stable offset of
// an open transaction, or a limit reached. An error (the consumer could
// not be created, or failed) is returned with the status partial.
func (p *Producer) ReadBack(ctx context.Context, gaps map[int32][][2]int64, runID string, lim ReadBackLimits) (backfill.Duplicates, error) {
	if lim.MaxRecords <= 0 {
		lim.MaxRecords = 1_000_000
	}
	if lim.Timeout <= 0 {
		lim.Timeout = 2 * time.Minute
	}
	if lim.MaxKeys <= 0 {
		lim.MaxKeys = 100
	}
	d := backfill.Duplicates{Status: "checked"}
	for _, rs := range gaps {
		for _, r := range rs {
			d.Unacknowledged += r[1] - r[0] + 1
		}
	}
	if d.Unacknowledged == 0 {
		return d, nil
	}
	// auto.offset.reset=error: an offset retention removes mid-read is
	// reported, not skipped.
	m, err := p.cfg.consumerConfig("ordermin-backfill-readback-"+runID, "read_committed", "error")
	if err != nil {
		return d, err
	}
	c, err := ckafka.NewConsumer(&m)
	if err != nil {
		d.Status, d.Reason = "partial", "the read-back consumer could not be created"
		return d, backfill.Errorf(backfill.KindInternal, "creating the read-back consumer: %w", err)
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	var reasons []string
	rb := &readBack{p: p, c: c, runID: runID, lim: lim, d: &d, seen: map[int64]bool{}}
	parts := slices.Sorted(maps.Keys(gaps))
	for _, part := range parts {
		for _, r := range gaps[part] {
			reason, stop, err := rb.readRange(rctx, part, r)
			if reason != "" {
				reasons = append(reasons, reason)
			}
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					reasons, err = append(reasons, fmt.Sprintf("stopped at the read-back's time limit of %s", lim.Timeout)), nil
					stop = true
				} else {
					d.Status, d.Reason = "partial", strings.Join(append(reasons, "stopped by an error"), "; ")
					return d, err
				}
			}
			if stop {
				d.Status, d.Reason = "partial", strings.Join(reasons, "; ")
				return d, nil
			}
		}
	}
	if len(reasons) > 0 {
		d.Status, d.Reason = "partial", strings.Join(reasons, "; ")
	}
	return d, nil
}

// readBack is one read-back's consumer and tallies.
type readBack struct {
	p     *Producer
	c     *ckafka.Consumer
	runID string
	lim   ReadBackLimits
	d     *backfill.Duplicates
	seen  map[int64]bool
}

// readRange reads partition part from r[0] through r[1]. reason says what
// of the range it could not read; stop, that a limit ends the read-back.
func (rb *readBack) readRange(ctx context.Context, part int32, r [2]int64) (reason string, stop bool, err error) {
	topic := rb.p.topic
	from := r[0]
	ms := 10_000
	if dl, ok := ctx.Deadline(); ok {
		ms = max(1, min(ms, int(time.Until(dl).Milliseconds())))
	}
	low, _, err := rb.c.QueryWatermarkOffsets(topic, part, ms)
	if err != nil {
		return "", false, fmt.Errorf("reading partition %d's offsets for the read-back: %w", part, err)
	}
	if low > r[1] {
		return fmt.Sprintf("partition %d: offsets %d–%d are below the log start offset %d (retention or delete-records removed them)", part, r[0], r[1], low), false, nil
	}
	if low > from {
		reason = fmt.Sprintf("partition %d: offsets %d–%d are below the log start offset %d (retention or delete-records removed them)", part, from, low-1, low)
		from = low
	}
	if err := rb.c.Assign([]ckafka.TopicPartition{{Topic: &topic, Partition: part, Offset: ckafka.Offset(from)}}); err != nil {
		return reason, false, fmt.Errorf("assigning partition %d at offset %d: %w", part, from, err)
	}
	join := func(more string) string {
		if reason == "" {
			return more
		}
		return reason + "; " + more
	}
	for {
		if ctx.Err() != nil {
			return reason, false, fmt.Errorf("reading partition %d back (offsets %d–%d): %w", part, r[0], r[1], context.Cause(ctx))
		}
		if rb.d.Read >= rb.lim.MaxRecords {
			return join(fmt.Sprintf("stopped at the read-back's limit of %d records", rb.lim.MaxRecords)), true, nil
		}
		switch e := rb.c.Poll(100).(type) {
		case *ckafka.Message:
			off := int64(e.TopicPartition.Offset)
			if e.TopicPartition.Error != nil {
				return reason, false, fmt.Errorf("reading partition %d at offset %d: %w", part, off, e.TopicPartition.Error)
			}
			if off > r[1] {
				return reason, false, nil // the range may hold gaps of its own (compaction, aborted transactions)
			}
			rb.count(e)
			if off == r[1] {
				return reason, false, nil
			}
		case ckafka.PartitionEOF:
			if at := int64(e.Offset); at <= r[1] {
				// read_committed stops at the last stable offset: the
				// first offset of a transaction still open.
				return join(fmt.Sprintf("partition %d: offsets %d–%d lie past the last stable offset %d, held back by another producer's open transaction", part, max(at, from), r[1], at)), false, nil
			}
			return reason, false, nil
		case ckafka.Error:
			if e.Code() == ckafka.ErrAutoOffsetReset || e.Code() == ckafka.ErrOffsetOutOfRange {
				return join(fmt.Sprintf("partition %d: offsets from %d on were removed while being read (%v)", part, from, e)), false, nil
			}
			if e.IsFatal() {
				return reason, false, fmt.Errorf("reading partition %d back: %w", part, e)
			}
			rb.p.noteAuthError(e)
		case ckafka.OAuthBearerTokenRefresh:
			if provide := rb.p.cfg.tokenProvider(); provide != nil {
				answerTokenRefresh(ctx, provide, rb.c, rb.p.log)
			}
		}
	}
}

// count sorts one record read back into this run's or another writer's.
func (rb *readBack) count(e *ckafka.Message) {
	d := rb.d
	d.Read++
	if string(header(e.Headers, RunHeader)) != rb.runID {
		d.Foreign++
		return
	}
	d.Records++
	if key, ok := decodeKey(e.Key); ok && !rb.seen[key] {
		rb.seen[key] = true
		if len(d.Keys) < rb.lim.MaxKeys {
			d.Keys = append(d.Keys, key)
		}
	}
}

func header(hs []ckafka.Header, key string) []byte {
	for _, h := range hs {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// decodeKey decodes a Confluent wire-format Avro long (or int) key.
func decodeKey(b []byte) (int64, bool) {
	if len(b) < 6 || b[0] != 0 {
		return 0, false
	}
	v, n := binary.Varint(b[5:])
	return v, n > 0
}
