// Package cli is the backfill command: it parses the subcommand and the
// settings, wires BigQuery, Schema Registry, Kafka and ksqlDB into one run,
// and reports. cmd/backfill's main and the sandbox both call Run.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/config"
)

// Version is set at build time with -ldflags "-X github.com/ordermin/ordermin-backfill/internal/cli.Version=…".
var Version = "dev"

// Run is the whole program: it parses the subcommand and settings, runs
// the job, writes the JSON report to stdout and logs to stderr. The
// returned error's backfill.Kind gives the exit code (see ExitCode).
func Run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	getenv := lookupEnv(environ)
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "check" || args[0] == "version" || args[0] == "help") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		cmd, args = "version", args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		config.Usage(stdout)
		return nil
	}
	rep := &backfill.Report{StartedAt: time.Now().UTC()}
	// Usage (--help) was asked for: it goes to stdout, and the exit code is 0.
	cfg, err := config.Load(args, getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		err = backfill.Errorf(backfill.KindConfig, "invalid settings:\n%w", err)
		fmt.Fprintln(stderr, err)
		// The settings did not load; the report file can still come from the
		// environment (the Kubernetes Job sets it there).
		finish(rep, err, getenv(config.Env("report.file")), stdout, stderr)
		return err
	}
	log := newLogger(cfg.Log, stderr)
	for _, w := range config.UnknownEnv(environ) {
		log.Warn(w)
	}
	// Which Google credentials the BigQuery clients use, and whose
	// identity: from the settings and the files, never a secret.
	log.Info("ordermin-backfill starting", "command", cmd, "version", versionString(), "dry_run", cfg.DryRun,
		"google_credentials", bigquery.DescribeCredentials(BigQueryConfig(cfg)))
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	j := &job{cfg: cfg, log: log, rep: rep, check: cmd == "check", progress: progressPipe(getenv, log)}
	err = endError(runJob(ctx, j), ctx.Err(), cfg.Timeout)
	finish(rep, err, cfg.ReportFile, stdout, stderr)
	if err != nil {
		log.Error("backfill failed", "kind", backfill.KindOf(err).String(), "exit_code", backfill.KindOf(err).ExitCode(), "error", err.Error())
	} else {
		log.Info("backfill finished", "rows_read", rep.RowsRead, "records_acked", rep.RecordsAcked, "seconds", rep.DurationSeconds)
	}
	return err
}

// reportFileLimit is what the kubelet keeps of a termination message.
const reportFileLimit = 4096

// runJob runs j, turning a panic on this goroutine into a KindInternal
// error (exit 1, reported), not Go's exit 2, which the exit-code table
// reserves for invalid settings.
func runJob(ctx context.Context, j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = backfill.Errorf(backfill.KindInternal, "internal error (a bug; please report it with this message): panic: %v\n%s", r, debug.Stack())
		}
	}()
	return jobBody(j, ctx)
}

// jobBody is the job itself; a variable so that a test can make it panic.
var jobBody = (*job).run

// finish completes the report and writes it to stdout, whole, and to the
// report file within reportFileLimit bytes.
func finish(rep *backfill.Report, err error, file string, stdout, stderr io.Writer) {
	rep.Finish(err, time.Now().UTC())
	fmt.Fprintf(stdout, "%s\n", rep.JSON())
	if file != "" {
		if werr := os.WriteFile(file, rep.JSONWithin(reportFileLimit), 0o644); werr != nil {
			fmt.Fprintf(stderr, "writing the report to %s: %v\n", file, werr)
		}
	}
}

// lookupEnv returns a getenv over environ's "KEY=value" entries; the last
// entry for a key wins, as in os.Getenv.
func lookupEnv(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// endError is the run's error once its context has ended: whatever stage
// noticed it, the run's own timeout is exit 4, as documented, and 130 is
// for SIGTERM and SIGINT only.
func endError(err, ctxErr error, timeout time.Duration) error {
	switch {
	case err == nil || ctxErr == nil:
		return err
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return backfill.Errorf(backfill.KindSource, "the run exceeded timeout=%s: %w", timeout, err)
	case backfill.KindOf(err) != backfill.KindInterrupted:
		return backfill.Errorf(backfill.KindInterrupted, "interrupted: %w", err)
	}
	return err
}

// ExitCode maps Run's error to the documented exit code.
func ExitCode(err error) int {
	if err == nil {
		return backfill.ExitOK
	}
	return backfill.KindOf(err).ExitCode()
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		v += " (" + bi.GoVersion + ")"
	}
	return "ordermin-backfill " + v
}
