package backfill

import (
	"errors"
	"fmt"
)

// Kind classifies a failure so that the command can map it to an exit code
// and Kubernetes can decide whether retrying may help.
//
// Each adapter classifies the failures it returns and wraps their causes
// with %w, so that errors.Is and errors.As see the whole chain; a wrap
// keeps the kind of the outermost *Error. Whether a context ended is asked
// of the context, not of the error: a per-attempt deadline, a sibling
// stage's cancellation and the run's end look alike in a chain, and gRPC
// and librdkafka errors do not wrap context errors.
type Kind int

// Failure kinds, one per documented exit code, and KindUnclassified.
const (
	// KindUnclassified is an error no boundary has classified: a plain
	// error, or one from a library. Each adapter classifies what it
	// returns, and the pipeline gives its ports' unclassified failures a
	// default (Or); one that reaches the command is reported as internal.
	KindUnclassified Kind = iota
	KindInternal          // a bug
	KindConfig            // invalid settings: retrying cannot help
	KindContract          // schemas, columns, topic or ksqlDB objects do not match: retrying cannot help
	KindSource            // reading the source (BigQuery) failed
	KindProduce           // producing to Kafka failed or records are undelivered
	KindVerify            // ksqlDB does not hold what was sent
	KindUnavailable       // a dependency (broker, registry, ksqlDB) could not be reached
	KindInterrupted       // SIGTERM/SIGINT stopped the run
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

// Or returns k, or def when k is KindUnclassified: the kind a boundary
// gives a failure that the system behind it did not classify.
func (k Kind) Or(def Kind) Kind {
	if k == KindUnclassified {
		return def
	}
	return k
}

// String names the kind as it appears in the report; an unclassified
// failure is reported as internal, as its exit code is.
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
// KindUnclassified when there is none (or err is nil).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnclassified
}
