package cli

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// The environment Supervise gives the job's process, besides SupervisedEnv.
const (
	// ParentPIDEnv holds the supervising parent's pid, for the job's
	// process to notice when its parent is gone.
	ParentPIDEnv = "ORDERMIN_BACKFILL_PARENT_PID"
	// ProgressFDEnv holds the file descriptor on which the job's process
	// writes its progress (one JSON backfill.Progress a line) to the parent.
	ProgressFDEnv = "ORDERMIN_BACKFILL_PROGRESS_FD"
)

// parentPoll is how often the job's process checks that its parent lives.
const parentPoll = 500 * time.Millisecond

// errParentGone ends the job's context when the supervising parent died.
var errParentGone = errors.New("the supervising parent process is gone (killed with SIGKILL?)")

// WatchParent returns ctx, ended also when the supervising parent (the pid
// in ParentPIDEnv) is no longer this process's parent: the parent died,
// possibly before Supervise's parent-death signal (Linux) was set up, or
// where there is none. The job then stops reading and drains as on
// SIGTERM. Once the parent is gone, the stdout and stderr pipes to it are
// broken: SIGPIPE is ignored, so that writing to them fails instead of
// killing the job before it has drained and written report.file.
// Without ParentPIDEnv (not supervised), ctx is returned as it is.
func WatchParent(ctx context.Context, getenv func(string) string) (context.Context, context.CancelFunc) {
	pid, err := strconv.Atoi(getenv(ParentPIDEnv))
	if err != nil || pid <= 0 {
		return ctx, func() {}
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(ctx)
	if os.Getppid() != pid {
		cancel(errParentGone)
		return ctx, func() { cancel(nil) }
	}
	go func() {
		t := time.NewTicker(parentPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != pid {
					cancel(errParentGone)
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// progressPipe returns what passes the pipeline's progress to the
// supervising parent through the descriptor in ProgressFDEnv, or nil when
// there is none (not supervised).
func progressPipe(getenv func(string) string, log *slog.Logger) func(backfill.Progress) {
	fd, err := strconv.Atoi(getenv(ProgressFDEnv))
	if err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "progress pipe to the supervising parent")
	failed := false
	return func(p backfill.Progress) {
		line, _ := json.Marshal(p)
		if _, err := f.Write(append(line, '\n')); err != nil && !failed {
			failed = true // the parent is gone, or the descriptor is not a pipe
			log.Warn("passing progress to the supervising parent failed; a crash report would lack the counters", "error", err.Error())
		}
	}
}
