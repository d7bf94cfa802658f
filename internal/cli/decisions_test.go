package cli

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/config"
)

func TestModeChoice(t *testing.T) {
	never := []backfill.Watermarks{{Partition: 0}, {Partition: 1}}
	// Retention (or kafka-delete-records) removed every record, keeping the
	// end offsets: the table may still hold every user.
	trimmed := []backfill.Watermarks{{Partition: 0, Start: 5, End: 5}, {Partition: 1}}
	held := []backfill.Watermarks{{Partition: 0, Start: 5, End: 5}, {Partition: 1, Start: 0, End: 1}}
	for _, tc := range []struct {
		setting config.Mode
		before  []backfill.Watermarks
		want    config.Mode
	}{
		{config.ModeFull, held, config.ModeFull},     // as set, whatever the topic holds
		{config.ModeDelta, never, config.ModeDelta},  // as set
		{config.ModeAuto, never, config.ModeFull},    // a topic that never held a record
		{config.ModeAuto, trimmed, config.ModeDelta}, // emptied by retention: ksqlDB may hold every user
		{config.ModeAuto, nil, config.ModeFull},      // no producer: dry run
		{config.ModeAuto, held, config.ModeDelta},    // a rerun: only what the table lacks
	} {
		c := config.Default()
		c.Mode = tc.setting
		j := &job{cfg: c, log: slog.New(slog.DiscardHandler)}
		if got := j.chooseMode(tc.before); got != tc.want {
			t.Errorf("mode=%s over %v chose %s, want %s", tc.setting, tc.before, got, tc.want)
		}
	}
}

func TestEndOfTheRunsContextDecidesTheKind(t *testing.T) {
	failed := backfill.Errorf(backfill.KindProduce, "3 records failed")
	for _, tc := range []struct {
		name        string
		err, ctxErr error
		want        backfill.Kind
	}{
		{"success", nil, nil, backfill.KindUnclassified}, // nil: no kind, exit 0
		{"success after the context ended", nil, context.Canceled, backfill.KindUnclassified},
		{"a failure while the context lives keeps its kind", failed, nil, backfill.KindProduce},
		{"the run's timeout is a source failure (exit 4)", failed, context.DeadlineExceeded, backfill.KindSource},
		{"SIGTERM makes any failure an interruption (130)", failed, context.Canceled, backfill.KindInterrupted},
		{"an interruption stays one", backfill.Errorf(backfill.KindInterrupted, "stopped"), context.Canceled, backfill.KindInterrupted},
	} {
		err := endError(tc.err, tc.ctxErr, time.Hour)
		if (err == nil) != (tc.err == nil) || err != nil && backfill.KindOf(err) != tc.want {
			t.Errorf("%s: %v (kind %s), want kind %s", tc.name, err, backfill.KindOf(err), tc.want)
		}
	}
	if err := endError(failed, context.DeadlineExceeded, 2*time.Hour); err == nil || !strings.Contains(err.Error(), "timeout=2h0m0s") || !strings.Contains(err.Error(), failed.Error()) {
		t.Errorf("timeout error %v does not name the setting and the failure", err)
	}
}

func TestExitCodes(t *testing.T) {
	want := map[backfill.Kind]int{
		backfill.KindUnclassified: 1, backfill.KindInternal: 1, backfill.KindConfig: 2, backfill.KindContract: 3, backfill.KindSource: 4,
		backfill.KindProduce: 5, backfill.KindVerify: 6, backfill.KindUnavailable: 7, backfill.KindInterrupted: 130,
	}
	for k, code := range want {
		if got := ExitCode(backfill.Errorf(k, "x")); got != code {
			t.Errorf("%s: exit %d, want %d", k, got, code)
		}
	}
	if got := ExitCode(errors.New("a failure no boundary classified")); got != backfill.ExitInternal {
		t.Errorf("an unclassified failure: exit %d, want %d", got, backfill.ExitInternal)
	}
	if got := ExitCode(nil); got != 0 {
		t.Errorf("success: exit %d", got)
	}
	if got := ExitCode(errors.New("unclassified")); got != 1 {
		t.Errorf("an error without a kind: exit %d, want 1", got)
	}
}
