package backfill

import (
	"errors"
	"fmt"
)

// Kind classifies a failure so that the command can map it to an exit code
// and Kubernetes can decide whether retrying may help.
type Kind int

// Failure kinds, one per documented exit code.
const (
	KindInternal    Kind = iota // a bug or an unclassified failure
	KindConfig                  // invalid settings: retrying cannot help
	KindContract                // schemas, columns, topic or ksqlDB objects do not match: retrying cannot help
	KindSource                  // reading the source (BigQuery) failed
	KindProduce                 // producing to Kafka failed or records are undelivered
	KindVerify                  // ksqlDB does not hold what was sent
	KindUnavailable             // a dependency (broker, registry, ksqlDB) could not be reached
	KindInterrupted             // SIGTERM/SIGINT stopped the run
)

// Exit codes returned by the backfill command.
const (
	ExitOK          = 0
	ExitInternal    = 1
	ExitConfig      = 2
	ExitContract    = 3
	ExitSource      = 4
	ExitProduce     = 5
	ExitVerify      = 6
	ExitUnavailable = 7
	ExitInterrupted = 130
)

// ExitCode returns the process exit code for a failure of kind k.
func (k Kind) ExitCode() int {
	switch k {
	case KindConfig:
		return ExitConfig
	case KindContract:
		return ExitContract
	case KindSource:
		return ExitSource
	case KindProduce:
		return ExitProduce
	case KindVerify:
		return ExitVerify
	case KindUnavailable:
		return ExitUnavailable
	case KindInterrupted:
		return ExitInterrupted
	}
	return ExitInternal
}

// String names the kind as it appears in the report.
func (k Kind) String() string {
	switch k {
	case KindConfig:
		return "config"
	case KindContract:
		return "contract"
	case KindSource:
		return "source"
	case KindProduce:
		return "produce"
	case KindVerify:
		return "verify"
	case KindUnavailable:
		return "unavailable"
	case KindInterrupted:
		return "interrupted"
	}
	return "internal"
}

// Error is a failure with a kind. Its message names what failed and, where
// it helps, what to do about it.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted message; %w wraps as in fmt.Errorf.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, or
// KindInternal when there is none. A nil error has no kind and yields KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
