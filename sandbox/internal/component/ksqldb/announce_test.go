package ksqldb_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// How many first-order announcements each pipeline sends, counted
// by an independent franz-go reader of the announcement topic.

// commitEvery is the pipelines' commit interval in these tests (ksqlDB's
// is 2 s): short, so a test waits a few intervals, not seconds.
const commitEvery = 100 * time.Millisecond

// pipelineCase is one pipeline as the migrations configure it, or a
// variant of it.
type pipelineCase struct {
	name string
	cfg  ksqlfake.PipelineConfig
}

var (
	// joinPipeline is V000002–V000003: ksqlDB's default cache, at-least-once.
	joinPipeline = pipelineCase{"join", ksqlfake.PipelineConfig{CacheMaxBytes: ksqlfake.DefaultCacheMaxBytes}}
	// countingPipeline is V000006–V000008: cache off, exactly-once.
	countingPipeline = pipelineCase{"counting", ksqlfake.PipelineConfig{Counting: true, ExactlyOnce: true}}
)

// announceTopic is the pipeline's default announcement topic.
func announceTopic(cfg ksqlfake.PipelineConfig) string {
	if cfg.Counting {
		return "STREAM.FIRST_ORDER"
	}
	return "STREAM.MIN_ORDER"
}

// startPipeline starts the double and pc's table query.
func (w *world) startPipeline(pc pipelineCase) (*ksqlfake.Server, *ksqlfake.Pipeline) {
	w.t.Helper()
	s := w.ksql(nil)
	cfg := pc.cfg
	cfg.CommitInterval = commitEvery
	p, err := s.StartPipeline(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(p.Close)
	return s, p
}

// orders produces (user, order) records in one produce request, their
// timestamps 1 ms apart, encoded as the job encodes them and
// murmur2-partitioned: every stage fetches them together, so no commit
// falls between them, as none does between two orders 1 ms apart but for
// a 1 ms in 2 s chance.
func (w *world) orders(rows ...backfill.KeyValue) {
	t := w.t
	t.Helper()
	codec, err := backfill.NewCodec(w.schemas)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.Bind(backfill.Mapping{KeyColumn: "user_id"}, []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "min_order_id", Type: backfill.TypeInt64}})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(w.cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	wr := enc.NewWriter()
	at := time.Now()
	var recs []*kgo.Record
	for i, r := range rows {
		key, value, skip, err := wr.Encode([]any{r.Key, r.Value})
		if err != nil || skip != "" {
			t.Fatalf("encode %v: %q %v", r, skip, err)
		}
		recs = append(recs, &kgo.Record{Key: append([]byte(nil), key...), Value: append([]byte(nil), value...), Timestamp: at.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := kc.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// announcements reads the whole announcement topic, after waiting for
// the pipeline to settle, and counts records per user. readCommitted is
// the isolation level consumers must use with exactly-once.
func (w *world) announcements(topic string, readCommitted bool) map[int64]int {
	t := w.t
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(w.cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50 * time.Millisecond)}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	kc, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	out := map[int64]int{}
	for quiet := 0; quiet < 3; {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := kc.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			k, err := strconv.ParseInt(string(r.Key), 10, 64)
			if err != nil {
				t.Fatalf("announcement key %q is not a user id", r.Key)
			}
			out[k]++
			n++
		})
		if n == 0 {
			quiet++
		}
	}
	return out
}

// settle waits until the table query holds want records for user and a
// few commit intervals have let every stage commit.
func settle(t *testing.T, p *ksqlfake.Pipeline, user, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n, _ := p.State(user); n >= want {
			break
		}
		if time.Now().After(deadline) {
			_, n, _ := p.State(user)
			t.Fatalf("user %d: the table query counted %d records, want %d", user, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(6 * commitEvery)
}

// Two orders by a new user 1 ms apart: the join announces both (each sees
// no row, the table is updated at its query's commit: the race the
// migrations README documents); the counting table with the cache off
// announces once; with ksqlDB's default cache the two updates collapse
// into one with count 2 and the user is never announced.
func TestTwoQuickOrdersOfANewUser(t *testing.T) {
	withCache := pipelineCase{"counting with a 10 MB cache", countingPipeline.cfg}
	withCache.cfg.CacheMaxBytes = ksqlfake.DefaultCacheMaxBytes
	for _, c := range []struct {
		pipelineCase
		want int
	}{{joinPipeline, 2}, {countingPipeline, 1}, {withCache, 0}} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, 3)
			_, p := w.startPipeline(c.pipelineCase)
			if err := p.StartAnnouncer(); err != nil {
				t.Fatal(err)
			}
			w.orders(backfill.KeyValue{Key: 7, Value: 700}, backfill.KeyValue{Key: 7, Value: 701})
			settle(t, p, 7, 2)
			topic := announceTopic(c.cfg)
			if got := w.announcements(topic, true)[7]; got != c.want {
				t.Errorf("user 7 announced %d times, want %d", got, c.want)
			}
		})
	}
}

// A full re-send (every user's minimum again, as a backfill in full mode
// or a broker duplicate sends it) while the announcer runs: the join
// announces every user again, the counting pipeline nobody.
func TestFullResendWhileTheAnnouncerRuns(t *testing.T) {
	const users = 20
	rows := rowsOf(users, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	for _, c := range []struct {
		pipelineCase
		want int
	}{{joinPipeline, users}, {countingPipeline, 0}} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, 3)
			_, p := w.startPipeline(c.pipelineCase)
			w.produce(w.schemas, rows, nil) // the backfill, verified before the announcer exists
			settle(t, p, users, 1)
			if err := p.StartAnnouncer(); err != nil {
				t.Fatal(err)
			}
			w.produce(w.schemas, rows, nil) // the re-send
			settle(t, p, users, 2)
			topic := announceTopic(c.cfg)
			got := 0
			for _, n := range w.announcements(topic, true) {
				got += n
			}
			if got != c.want {
				t.Errorf("the re-send of %d users was announced %d times, want %d", users, got, c.want)
			}
		})
	}
}

// A crash in the middle of a stage's commit, for a new user's one order.
// Exactly-once: one announcement for read_committed readers in both
// pipelines (a read_uncommitted reader also sees the aborted one). At
// least once: the join re-announces; the counting table, crashing after
// its state was written, counts the order twice and never announces it.
func TestCrashMidCommit(t *testing.T) {
	alos := func(pc pipelineCase) pipelineCase {
		pc.cfg.ExactlyOnce = false
		pc.name += ", at-least-once"
		return pc
	}
	eos := func(pc pipelineCase) pipelineCase { pc.cfg.ExactlyOnce = true; pc.name += ", exactly-once"; return pc }
	for _, c := range []struct {
		pipelineCase
		stage                  ksqlfake.Stage
		point                  ksqlfake.CrashPoint
		committed, uncommitted int
		wantCount              int64
	}{
		{alos(joinPipeline), ksqlfake.StageAnnouncer, ksqlfake.CrashAfterOutput, 2, 2, 1},
		{eos(joinPipeline), ksqlfake.StageAnnouncer, ksqlfake.CrashAfterOutput, 1, 2, 1},
		{eos(countingPipeline), ksqlfake.StageTable, ksqlfake.CrashAfterState, 1, 1, 1},
		{eos(countingPipeline), ksqlfake.StageTable, ksqlfake.CrashAfterOutput, 1, 1, 1},
		{eos(countingPipeline), ksqlfake.StageAnnouncer, ksqlfake.CrashAfterOutput, 1, 2, 1},
		{alos(countingPipeline), ksqlfake.StageTable, ksqlfake.CrashAfterState, 0, 0, 2},
		{alos(countingPipeline), ksqlfake.StageAnnouncer, ksqlfake.CrashAfterOutput, 2, 2, 1},
	} {
		t.Run(c.name+", "+c.stage.String()+" crashing "+c.point.String(), func(t *testing.T) {
			w := newWorld(t, 3)
			_, p := w.startPipeline(c.pipelineCase)
			if err := p.StartAnnouncer(); err != nil {
				t.Fatal(err)
			}
			p.CrashNextCommit(c.stage, c.point)
			w.orders(backfill.KeyValue{Key: 9, Value: 900})
			settle(t, p, 9, 1)
			if p.Crashes() != 1 {
				t.Fatalf("%d crashes happened, want 1", p.Crashes())
			}
			if _, n, _ := p.State(9); n != c.wantCount {
				t.Errorf("after the crash the table counts %d records of user 9, want %d", n, c.wantCount)
			}
			topic := announceTopic(c.cfg)
			if got := w.announcements(topic, true)[9]; got != c.committed {
				t.Errorf("read_committed: user 9 announced %d times, want %d", got, c.committed)
			}
			if got := w.announcements(topic, false)[9]; got != c.uncommitted {
				t.Errorf("read_uncommitted: user 9 announced %d times, want %d", got, c.uncommitted)
			}
		})
	}
}

// The job's sequences against each pipeline, with the job's own ksqlDB
// client: backfill and verify before the announcer exists (the cutover
// order), then create the announcer; a rerun in auto mode (delta: the
// table holds every user, nothing is sent), a full rerun (every minimum
// re-sent), and a delta rerun after the source gained users the table
// lacks (those are sent, and the table learns of them only now).
func TestJobSequencesCountAnnouncements(t *testing.T) {
	const users, late = 30, 5
	rows := rowsOf(users, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	grown := append(rowsOf(late, func(i int) int64 { return int64(users + i + 1) }, func(i int) int64 { return int64(users+i) + 100 }), rows...)
	for _, c := range []struct {
		pipelineCase
		fake             func(*ksqlfake.Config)
		client           func(*ksqldb.Config)
		afterFull, total int
	}{
		{joinPipeline, nil, nil, users, users + late},
		{countingPipeline, countingTable, countingClient, 0, late},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, 3)
			s := w.ksql(c.fake)
			cfg := c.cfg
			cfg.CommitInterval = commitEvery
			p, err := s.StartPipeline(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			kc := client(t, s.URL(), c.client)
			facts := preflight(t, kc)
			announced := func() int {
				n := 0
				for _, k := range w.announcements(announceTopic(cfg), true) {
					n += k
				}
				return n
			}
			send := func(rs []backfill.KeyValue) {
				catchUp(t, kc, facts, w.produce(w.schemas, rs, nil))
				v, err := kc.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rs), fast)
				if err != nil || v.Status != "passed" {
					t.Fatalf("verify %+v: %v", v, err)
				}
			}
			delta := func(rs []backfill.KeyValue) []backfill.KeyValue {
				keep := make([]bool, len(rs))
				if err := kc.NewDelta(facts, 25).Keep(context.Background(), rs, keep); err != nil {
					t.Fatal(err)
				}
				var out []backfill.KeyValue
				for i, k := range keep {
					if k {
						out = append(out, rs[i])
					}
				}
				return out
			}

			send(rows) // the backfill, verified
			settle(t, p, users, 1)
			if err := p.StartAnnouncer(); err != nil {
				t.Fatal(err)
			}
			if d := delta(rows); len(d) != 0 {
				t.Fatalf("auto rerun: delta keeps %d records, want none", len(d))
			}
			send(rows) // a full rerun
			settle(t, p, users, 2)
			if got := announced(); got != c.afterFull {
				t.Errorf("after the full rerun: %d announcements, want %d", got, c.afterFull)
			}
			d := delta(grown) // the source gained users the table lacks
			if len(d) != late {
				t.Fatalf("delta rerun keeps %d records, want the %d new users", len(d), late)
			}
			send(d)
			settle(t, p, users+late, 1)
			if got := announced(); got != c.total {
				t.Errorf("after the delta rerun: %d announcements, want %d (the new users are announced in both pipelines)", got, c.total)
			}
		})
	}
}
