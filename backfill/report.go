package backfill

import (
	"encoding/json"
	"log/slog"
	"time"
)

// Report is the run's outcome, printed as one JSON document on stdout.
type Report struct {
	Status   string `json:"status"` // "ok", "failed" or "interrupted"
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	// ErrorKind classifies Error: config, contract, source, produce, verify, unavailable, interrupted or internal.
	ErrorKind string `json:"error_kind,omitempty"`
	DryRun    bool   `json:"dry_run"`
	// RunID names this attempt; with kafka.run_header every record carries it.
	RunID string `json:"run_id,omitempty"`

	Topic         string `json:"topic,omitempty"`
	Partitions    int    `json:"partitions,omitempty"`
	KeySchemaID   int    `json:"key_schema_id,omitempty"`
	ValueSchemaID int    `json:"value_schema_id,omitempty"`
	SourcePath    string `json:"source_path,omitempty"`
	// SourceFallback says why the source read by a slower path than asked
	// (bigquery.read_api=auto falling back to REST).
	SourceFallback string `json:"source_fallback,omitempty"`
	SourceTotal    *int64 `json:"source_total_rows,omitempty"`

	RowsRead           int64            `json:"rows_read"`
	RowsSkipped        map[string]int64 `json:"rows_skipped"`
	RecordsEncoded     int64            `json:"records_encoded"`
	RecordsProduced    int64            `json:"records_produced"`
	RecordsAcked       int64            `json:"records_acked"`
	RecordsFailed      int64            `json:"records_failed"`
	RecordsUndelivered int64            `json:"records_undelivered"`
	DeliveryErrors     []string         `json:"delivery_errors,omitempty"`
	Bytes              int64            `json:"bytes"`

	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	RowsPerSecond   float64   `json:"rows_per_second"`

	ShardIndex int `json:"shard_index"`
	ShardCount int `json:"shard_count"`
	// Mode is "full" (every row produced) or "delta" (only what the table lacks).
	Mode  string `json:"mode,omitempty"`
	Delta *Delta `json:"delta,omitempty"`

	// PartitionsWritten says, per partition, what the job wrote: the end
	// offset before its first record and the offsets acknowledged.
	PartitionsWritten []PartitionWrite `json:"partitions_written,omitempty"`
	// CatchUps are the waits for ksqlDB's table query to aggregate the
	// topic: before delta lookups and before verification.
	CatchUps []CatchUp `json:"ksqldb_catch_up,omitempty"`
	// Duplicates is what reading back the offsets this run did not
	// acknowledge found.
	Duplicates *Duplicates `json:"duplicates,omitempty"`

	Verification *Verification `json:"verification,omitempty"`

	// Counters is set only in the report the supervising parent writes
	// for a job's process that died without writing its own:
	// CountersLastProgress when the counters are the last progress that
	// process passed on (at CountersAt), CountersUnknown when none
	// arrived; the counters are then null, not 0.
	Counters   string     `json:"counters,omitempty"`
	CountersAt *time.Time `json:"counters_at,omitempty"`
	// SourceCheck is what `backfill check` learnt of the query from a dry
	// run: the result's columns and the bytes it will process.
	SourceCheck *SourceCheck `json:"source_check,omitempty"`
	// GoogleCredentials, in the report of `backfill check`, says which
	// Google credentials the BigQuery clients use.
	GoogleCredentials *GoogleCredentials `json:"google_credentials,omitempty"`

	// Truncated names what JSONWithin dropped to fit a size limit; the
	// full report is on stdout.
	Truncated []string `json:"truncated,omitempty"`
}

// Values of Report.Counters.
const (
	CountersLastProgress = "last_progress"
	CountersUnknown      = "unknown"
)

// Progress is a snapshot of a run's counters while it runs; the job's
// process passes it to its supervising parent, whose report uses the last
// one if the process dies without a report.
type Progress struct {
	RowsRead        int64            `json:"rows_read"`
	RowsSkipped     map[string]int64 `json:"rows_skipped,omitempty"`
	RecordsEncoded  int64            `json:"records_encoded"`
	RecordsProduced int64            `json:"records_produced"`
	RecordsAcked    int64            `json:"records_acked"`
	RecordsFailed   int64            `json:"records_failed"`
	Bytes           int64            `json:"bytes"`
}

// ApplyProgress sets the report's counters to p's, as the last progress
// reported at t.
func (r *Report) ApplyProgress(p Progress, t time.Time) {
	r.RowsRead, r.RowsSkipped, r.RecordsEncoded, r.Bytes = p.RowsRead, p.RowsSkipped, p.RecordsEncoded, p.Bytes
	r.RecordsProduced, r.RecordsAcked, r.RecordsFailed = p.RecordsProduced, p.RecordsAcked, p.RecordsFailed
	r.Counters, r.CountersAt = CountersLastProgress, &t
}

// Delta counts what delta mode decided, per record: produced when the
// table lacks the key or holds a larger minimum; skipped when it holds the
// same or a smaller one.
type Delta struct {
	Missing        int64 `json:"keys_missing"`
	TableLarger    int64 `json:"keys_table_larger"`
	AlreadyPresent int64 `json:"keys_already_present"`
	TableSmaller   int64 `json:"keys_table_smaller"`
}

// Verification is the outcome of checking the ksqlDB table after a run.
type Verification struct {
	Mode   string `json:"mode"`             // sample, full or none
	Status string `json:"status,omitempty"` // passed, failed, interrupted or skipped
	Table  string `json:"table,omitempty"`  // the table checked, as ksqlDB names it
	// Endpoint is the pull-query endpoint used: /query or /query-stream.
	Endpoint string `json:"endpoint,omitempty"`
	Observed int64  `json:"records_observed"` // records the recorder saw
	Checked  int64  `json:"keys_checked"`
	// DuplicateKeys counts keys carried by more than one record sent, and
	// DuplicateRecords the records beyond the first of each: over every
	// record with verify=full, over the sampled keys with verify=sample.
	// Either above 0 fails the run: each extra record announces a first
	// order again.
	DuplicateKeys    int64    `json:"keys_sent_more_than_once"`
	DuplicateRecords int64    `json:"duplicate_records"`
	Matched          int64    `json:"keys_matched"`
	TableSmaller     int64    `json:"keys_table_smaller"` // a warning: CDC saw an earlier order
	Missing          int64    `json:"keys_missing"`
	Larger           int64    `json:"keys_table_larger"`
	Rounds           int      `json:"rounds"` // passes over the keys still failing
	Examples         []string `json:"examples,omitempty"`
	Warnings         []string `json:"warnings,omitempty"`
	Seconds          float64  `json:"seconds"`
}

// Finish fills the status, exit code, error and rates from err.
func (r *Report) Finish(err error, now time.Time) {
	r.FinishedAt = now
	if !r.StartedAt.IsZero() {
		r.DurationSeconds = now.Sub(r.StartedAt).Seconds()
	}
	if r.DurationSeconds > 0 {
		r.RowsPerSecond = float64(r.RowsRead) / r.DurationSeconds
	}
	r.RecordsUndelivered = r.RecordsProduced - r.RecordsAcked - r.RecordsFailed
	if r.RowsSkipped == nil {
		r.RowsSkipped = map[string]int64{}
	}
	if err == nil {
		r.Status, r.ExitCode, r.Error, r.ErrorKind = "ok", ExitOK, "", ""
		return
	}
	k := KindOf(err)
	r.Status = "failed"
	if k == KindInterrupted {
		r.Status = "interrupted"
	}
	r.ExitCode, r.Error, r.ErrorKind = k.ExitCode(), err.Error(), k.String()
}

// reportFields is Report without its methods, for JSON to marshal.
type reportFields Report

// JSON returns the report as one line of JSON. With Counters
// CountersUnknown, the counters are null: nobody counted them.
func (r *Report) JSON() []byte {
	if r.Counters != CountersUnknown {
		b, _ := json.Marshal((*reportFields)(r))
		return b
	}
	// The fields below shadow the embedded ones of the same JSON name.
	b, _ := json.Marshal(struct {
		*reportFields
		RowsRead           *int64            `json:"rows_read"`
		RowsSkipped        map[string]string `json:"rows_skipped"`
		RecordsEncoded     *int64            `json:"records_encoded"`
		RecordsProduced    *int64            `json:"records_produced"`
		RecordsAcked       *int64            `json:"records_acked"`
		RecordsFailed      *int64            `json:"records_failed"`
		RecordsUndelivered *int64            `json:"records_undelivered"`
		Bytes              *int64            `json:"bytes"`
		RowsPerSecond      *float64          `json:"rows_per_second"`
	}{reportFields: (*reportFields)(r)})
	return b
}

// CatchUp is one wait for ksqlDB's table query to commit past the offsets
// the job needs it to have aggregated.
type CatchUp struct {
	Stage  string `json:"stage"`                 // e.g. "before verification"
	Table  string `json:"table,omitempty"`       // as ksqlDB names it
	Group  string `json:"query_group,omitempty"` // the table query's consumer group
	Status string `json:"status"`                // caught_up, stalled, unreachable, failed or interrupted
	// Lag is how many records the query was still behind at the end.
	Lag        int64          `json:"lag_records"`
	Partitions []PartitionLag `json:"partitions_behind,omitempty"`
	Seconds    float64        `json:"seconds"`
}

// PartitionLag is one partition a query had not yet committed up to.
type PartitionLag struct {
	Partition int32 `json:"partition"`
	Target    int64 `json:"target_offset"`
	Committed int64 `json:"committed_offset"`
	Lag       int64 `json:"lag"`
}

// Duplicates is what reading back the offsets a run did not acknowledge
// found: records of this run stored twice by the broker (librdkafka#4953),
// and records others wrote meanwhile.
type Duplicates struct {
	// Status is checked (every unacknowledged offset was read), partial
	// (Reason says what was not: offsets below the log start, past an
	// open transaction's last stable offset, or beyond a limit), or
	// skipped (no run header, or the run was interrupted).
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Unacknowledged counts the offsets between the end offset before the
	// run and the highest acknowledged one that the run did not acknowledge.
	Unacknowledged int64   `json:"offsets_unacknowledged"`
	Read           int64   `json:"records_read"`
	Records        int64   `json:"records"`        // records carrying this run's header
	Keys           []int64 `json:"keys,omitempty"` // their keys, the first 100
	Foreign        int64   `json:"foreign_records"`
	Warning        string  `json:"warning,omitempty"`
	Error          string  `json:"error,omitempty"`
}

// JSONWithin returns the report as JSON of at most limit bytes, for a
// destination that truncates (a Kubernetes termination message keeps
// 4096 bytes). It drops the detail lists first, in this order, and names
// what it dropped (only lists it had) in "truncated": examples and warnings, duplicate keys,
// delivery errors, per-partition lags and writes; as a last resort it
// shortens the error message. The counters and the status always remain.
func (r Report) JSONWithin(limit int) []byte {
	out := r.JSON()
	if len(out) <= limit {
		return out
	}
	if r.Verification != nil {
		v := *r.Verification
		r.Verification = &v
	}
	if r.Duplicates != nil {
		d := *r.Duplicates
		r.Duplicates = &d
	}
	r.CatchUps = append([]CatchUp(nil), r.CatchUps...)
	// Each step drops one list and says whether the report had it.
	steps := []struct {
		what string
		drop func() bool
	}{
		{"verification.examples", func() bool {
			if r.Verification == nil || len(r.Verification.Examples)+len(r.Verification.Warnings) == 0 {
				return false
			}
			r.Verification.Examples, r.Verification.Warnings = nil, nil
			return true
		}},
		{"duplicates.keys", func() bool {
			if r.Duplicates == nil || len(r.Duplicates.Keys) == 0 {
				return false
			}
			r.Duplicates.Keys = nil
			return true
		}},
		{"delivery_errors", func() bool {
			had := len(r.DeliveryErrors) > 0
			r.DeliveryErrors = nil
			return had
		}},
		{"ksqldb_catch_up.partitions_behind", func() bool {
			had := false
			for i := range r.CatchUps {
				had = had || len(r.CatchUps[i].Partitions) > 0
				r.CatchUps[i].Partitions = nil
			}
			return had
		}},
		{"partitions_written", func() bool {
			had := len(r.PartitionsWritten) > 0
			r.PartitionsWritten = nil
			return had
		}},
	}
	for _, s := range steps {
		if !s.drop() {
			continue
		}
		r.Truncated = append(r.Truncated, s.what)
		if out = r.JSON(); len(out) <= limit {
			return out
		}
	}
	r.Truncated = append(r.Truncated, "error")
	msg := r.Error
	for n := len(msg) / 2; len(out) > limit && n > 0; n /= 2 {
		r.Error = msg[:n] + "…"
		out = r.JSON()
	}
	return out
}

// GoogleCredentials says which Google credentials the BigQuery clients
// use and whose identity they carry, as read from the settings, the
// environment and the credentials file: never a token, a key or a secret.
type GoogleCredentials struct {
	// Type is the credentials file's type (external_account: workload
	// identity federation; impersonated_service_account; service_account:
	// a key file; authorized_user), metadata_server without a file (GKE
	// Workload Identity, a VM's service account), or none (an emulator).
	Type string `json:"type"`
	// Source is where the file was found: bigquery.credentials_file,
	// GOOGLE_APPLICATION_CREDENTIALS or gcloud's application default
	// credentials file; or metadata server, or none.
	Source string `json:"source"`
	File   string `json:"file,omitempty"`
	// Audience is an external account's workload identity provider.
	Audience string `json:"audience,omitempty"`
	// TokenFile is an external account's credential_source.file: the
	// token it exchanges (on EKS, the projected service account token).
	TokenFile string `json:"token_file,omitempty"`
	// CredentialSource is an external account's other kind of subject
	// token source: url, aws, executable or certificate.
	CredentialSource string `json:"credential_source,omitempty"`
	// TokenURL is an external account's Security Token Service endpoint.
	TokenURL string `json:"token_url,omitempty"`
	// ServiceAccount is the identity the calls carry: the service account
	// impersonated, or a key file's client_email. Empty for an external
	// account without impersonation (the federated principal itself) and
	// for the metadata server (the pod's or VM's service account).
	ServiceAccount string `json:"service_account,omitempty"`
	// Problem says why the file could not be read or understood.
	Problem string `json:"problem,omitempty"`
}

// LogValue logs the description as a group of its set fields, named as
// in the report.
func (g GoogleCredentials) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, f := range []struct{ k, v string }{
		{"type", g.Type}, {"source", g.Source}, {"file", g.File}, {"audience", g.Audience}, {"token_file", g.TokenFile},
		{"credential_source", g.CredentialSource}, {"token_url", g.TokenURL}, {"service_account", g.ServiceAccount}, {"problem", g.Problem},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	return slog.GroupValue(attrs...)
}
