package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqjobsfake"
	"github.com/ordermin/ordermin-backfill/internal/fake/bqreadfake"
	"github.com/ordermin/ordermin-backfill/internal/fake/gauthfake"
	"github.com/ordermin/ordermin-backfill/internal/fake/srfake"
)

// The job on EKS reaches BigQuery with workload identity
// federation: a projected Kubernetes service account token, exchanged by
// the Google auth library (cloud.google.com/go/auth, which both BigQuery
// clients use) at STS for a federated token, exchanged in turn at IAM
// Credentials for the service account's access token. These tests run the
// real binary's main (this test binary re-executes itself as the job, and
// the job's supervisor re-executes it again, as cmd/backfill does) against
// doubles of STS and IAM Credentials (gauthfake) and of BigQuery's REST
// (bqjobsfake) and Storage Read gRPC (bqreadfake) APIs, all served over
// TLS with a test CA the job's process trusts through SSL_CERT_FILE, so
// that the clients send their credentials as they do to Google.

// runMainEnv makes this test binary run the job's main instead of the
// tests.
const runMainEnv = "ORDERMIN_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" {
		main()
		return
	}
	os.Exit(m.Run())
}

// The workload identity pool and provider, the service account and the
// Kubernetes service account of the tests, as k8s/overlays/eks names them.
const (
	wifAudience       = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks-ordermin/providers/eks-cluster"
	wifServiceAccount = "ordermin-backfill@orders-prod.iam.gserviceaccount.com"
	k8sSubject        = "system:serviceaccount:ordermin:ordermin-backfill"
	authRows          = 300
)

// authWorld is Google and BigQuery, over TLS, for one run of the job.
type authWorld struct {
	dir                           string
	caFile, tokenFile, configFile string
	issuer                        *gauthfake.Issuer
	google                        *gauthfake.Server
	jobs                          *bqjobsfake.Server
	rest                          *httptest.Server
	read                          *bqreadfake.Server
	registry                      *srfake.Server
	restEndpoint, storageEndpoint string
	// beforeREST, if set, sees each REST call that carried a valid token
	// before the REST double answers it.
	beforeREST atomic.Pointer[func(r *http.Request)]
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	w := &authWorld{dir: t.TempDir()}
	ca, err := gauthfake.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	w.caFile = filepath.Join(w.dir, "ca.pem")
	if err := os.WriteFile(w.caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if w.issuer, err = gauthfake.NewIssuer("https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF"); err != nil {
		t.Fatal(err)
	}
	w.google = gauthfake.Start(ca, w.issuer, wifAudience, wifServiceAccount)
	t.Cleanup(w.google.Close)

	// BigQuery: the REST double behind a TLS server that lets through only
	// calls carrying a token generateAccessToken issued; the Storage Read
	// double over TLS, with interceptors that check the same.
	dst := &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}
	if w.jobs, err = bqjobsfake.Start(dst, authRows, &bq.TableSchema{Fields: []*bq.TableFieldSchema{
		{Name: "user_id", Type: "INTEGER"}, {Name: "min_order_id", Type: "INTEGER"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.jobs.Close)
	w.rest = httptest.NewUnstartedServer(w.google.RequireToken(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if f := w.beforeREST.Load(); f != nil {
			(*f)(r)
		}
		w.jobs.ServeHTTP(rw, r)
	})))
	w.rest.TLS = ca.ServerConfig()
	w.rest.StartTLS()
	t.Cleanup(w.rest.Close)
	w.restEndpoint = w.rest.URL
	if w.read, err = bqreadfake.StartWith(grpc.Creds(credentials.NewTLS(ca.ServerConfig())),
		grpc.UnaryInterceptor(w.google.UnaryInterceptor()), grpc.StreamInterceptor(w.google.StreamInterceptor())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.read.Close)
	w.storageEndpoint = w.read.Addr()
	rec := resultRecord(authRows)
	w.read.AddTable("projects/p/datasets/d/tables/anon", rec)
	rec.Release()

	w.registry = srfake.New()
	t.Cleanup(w.registry.Close)
	for subject, schema := range map[string]string{"STREAM.ORDER.INSERT-key": backfilltest.KsqlKeySchema, "STREAM.ORDER.INSERT-value": backfilltest.KsqlValueSchema} {
		if _, err := w.registry.Register(subject, schema); err != nil {
			t.Fatal(err)
		}
	}

	// The projected token and the credential configuration, as the EKS
	// overlay mounts them (here under the test's directory).
	w.tokenFile = filepath.Join(w.dir, "gcp-wif", "token")
	w.configFile = filepath.Join(w.dir, "gcp-wif-config", "credential-config.json")
	w.writeConfig(t, w.tokenFile, true)
	return w
}

// writeConfig writes the credential configuration naming tokenFile.
func (w *authWorld) writeConfig(t *testing.T, tokenFile string, impersonate bool) {
	t.Helper()
	writeAtomically(t, w.configFile, w.google.CredentialConfig(tokenFile, impersonate))
}

// writeToken writes a token for aud expiring at exp as the kubelet
// updates a projected volume (a new file renamed over the old) and
// returns it.
func (w *authWorld) writeToken(t *testing.T, aud string, exp time.Time) string {
	t.Helper()
	tok := w.issuer.Mint(k8sSubject, aud, exp)
	writeAtomically(t, w.tokenFile, []byte(tok))
	return tok
}

func writeAtomically(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Error(err)
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// resultRecord is the query's result: user i+1 has order 1000*(i+1).
func resultRecord(rows int) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "min_order_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil))
	defer b.Release()
	for i := range int64(rows) {
		b.Field(0).(*array.Int64Builder).Append(i + 1)
		b.Field(1).(*array.Int64Builder).Append(1000 * (i + 1))
	}
	return b.NewRecord()
}

// authRun is the outcome of one run of the job.
type authRun struct {
	code    int
	report  map[string]any
	logs    []map[string]any
	stdout  string
	stderr  string
	elapsed time.Duration
}

// run runs the job's binary: a dry run (nothing produced) of the default
// query, read through the Storage Read API, with env added to a clean
// environment (no ambient Google credentials: HOME is the test's
// directory).
func (w *authWorld) run(t *testing.T, env []string, args ...string) authRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	args = append([]string{"run", "--dry-run", "--mode=full",
		"--bigquery-project=p", "--bigquery-table=p.d.orders", "--bigquery-read-api=storage",
		"--bigquery-endpoint=" + w.restEndpoint, "--bigquery-storage-endpoint=" + w.storageEndpoint,
		"--schema-registry-url=" + w.registry.URL(), "--ksqldb-preflight=false", "--ksqldb-verify=none",
		"--pipeline-progress-interval=0", "--log-format=json"}, args...)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append([]string{runMainEnv + "=1", "HOME=" + w.dir, "PATH=" + os.Getenv("PATH"),
		"SSL_CERT_FILE=" + w.caFile}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := authRun{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running the job: %v\n%s", err, r.stderr)
	}
	if err := json.Unmarshal(stdout.Bytes(), &r.report); err != nil {
		t.Fatalf("the report is not JSON (%v):\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			r.logs = append(r.logs, line)
		}
	}
	return r
}

// firstLine is the run's first log line, which names the credentials.
func (r authRun) firstLine(t *testing.T) map[string]any {
	t.Helper()
	if len(r.logs) == 0 {
		t.Fatalf("no log line:\n%s", r.stderr)
	}
	if r.logs[0]["msg"] != "ordermin-backfill starting" {
		t.Fatalf("first log line %v, want ordermin-backfill starting", r.logs[0])
	}
	return r.logs[0]
}

// credentialsOf returns the google_credentials object of a log line or
// report.
func credentialsOf(t *testing.T, where string, v map[string]any) map[string]any {
	t.Helper()
	c, ok := v["google_credentials"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no google_credentials: %v", where, v)
	}
	return c
}

func wantFields(t *testing.T, where string, got map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %q (all: %v)", where, k, got[k], v, got)
		}
	}
}

// noSecrets checks that no token the run used appears in its output.
func (w *authWorld) noSecrets(t *testing.T, r authRun, tokens ...string) {
	t.Helper()
	for _, e := range w.google.Exchanges() {
		tokens = append(tokens, e.SubjectToken, e.AccessToken)
	}
	for _, i := range w.google.Impersonations() {
		tokens = append(tokens, i.AccessToken)
	}
	for _, tok := range tokens {
		if tok != "" && (strings.Contains(r.stdout, tok) || strings.Contains(r.stderr, tok)) {
			t.Errorf("the run's output shows a token (%.12s…)", tok)
		}
	}
	// A JWT's header, whichever token it is.
	if strings.Contains(r.stdout+r.stderr, "eyJhbGciOi") {
		t.Error("the run's output shows a JWT")
	}
}

// The whole chain, end to end: the first log line names the credential
// configuration (type, audience, token file, service account) and no
// secret; every call to BigQuery, REST and gRPC alike, carries the
// service account's access token that IAM Credentials issued; and when
// the kubelet rotates the projected token mid-run, the library reads the
// new file at its next exchange, whose tokens the later calls carry.
func TestWorkloadIdentityFederationEndToEnd(t *testing.T) {
	w := newAuthWorld(t)
	// Tokens that live a second or two, so that the library (which
	// refreshes a token 225 s before it expires: cloud.google.com/go/auth
	// auth.go defaultExpiryDelta, and at once when it has expired)
	// exchanges again while the run goes on; the query job runs a while
	// (jobs.get polls).
	w.google.ExpiresIn, w.google.Lifetime = 1, 2*time.Second
	w.jobs.RunningPolls = 4
	first := w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(time.Hour))

	var second string
	rotated := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the kubelet: a new token once the first was exchanged
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, e := range w.google.Exchanges() {
				if e.SubjectToken == first && e.AccessToken != "" {
					second = w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(2*time.Hour))
					close(rotated)
					return
				}
			}
		}
	}()
	// The last REST call before the read session waits for the rotation
	// and until every token issued so far has expired: the Storage Read
	// API calls then need tokens exchanged from the new file.
	var once sync.Once
	hook := func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tables/anon") {
			once.Do(func() {
				select {
				case <-rotated:
				case <-time.After(30 * time.Second):
				}
				time.Sleep(2100 * time.Millisecond)
			})
		}
	}
	w.beforeREST.Store(&hook)
	r := w.run(t, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + w.configFile})
	close(done)
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0: %v\n%s", r.code, r.report["error"], r.stderr)
	}
	if r.report["rows_read"] != float64(authRows) || r.report["source_path"] != "storage" {
		t.Errorf("report: rows_read %v via %v, want %d via storage", r.report["rows_read"], r.report["source_path"], authRows)
	}

	creds := credentialsOf(t, "the first log line", r.firstLine(t))
	wantFields(t, "the first log line's google_credentials", creds, map[string]string{
		"type": "external_account", "source": "GOOGLE_APPLICATION_CREDENTIALS", "file": w.configFile,
		"audience": wifAudience, "token_file": w.tokenFile, "service_account": wifServiceAccount,
	})
	w.noSecrets(t, r, first, second)

	// Every call carried a token generateAccessToken issued, unexpired.
	calls := w.google.Calls()
	var rest, rpc int
	for _, c := range calls {
		if !c.Valid {
			t.Errorf("%s call %s carried no valid service account token (%q)", c.API, c.Method, c.Token)
		}
		if c.API == "rest" {
			rest++
		} else {
			rpc++
		}
	}
	if rest == 0 || rpc < 2 {
		t.Errorf("%d REST and %d gRPC calls, want both APIs called (CreateReadSession, ReadRows)", rest, rpc)
	}
	for _, e := range w.google.Exchanges() {
		if e.AccessToken == "" || e.Audience != wifAudience {
			t.Errorf("STS exchange %+v: want the configured audience, and a token issued", e)
		}
	}
	for _, i := range w.google.Impersonations() {
		if i.AccessToken == "" || i.ServiceAccount != wifServiceAccount {
			t.Errorf("generateAccessToken %+v: want %s, and a token issued", i, wifServiceAccount)
		}
	}

	// Rotation: an exchange presented the new file's content, and a later
	// call carried a token descending from it.
	if second == "" {
		t.Fatal("the first token was never exchanged")
	}
	var exchangedSecond, usedSecond bool
	for _, e := range w.google.Exchanges() {
		exchangedSecond = exchangedSecond || e.SubjectToken == second
	}
	for _, c := range calls {
		if sub, ok := w.google.SubjectOf(c.Token); ok && sub == second && c.API == "grpc" {
			usedSecond = true
		}
	}
	if !exchangedSecond || !usedSecond {
		t.Errorf("after the token file changed: exchanged %v, used by a Storage Read API call %v; want both (%d exchanges, %d calls)",
			exchangedSecond, usedSecond, len(w.google.Exchanges()), len(calls))
	}
}

// bigquery.credentials_file may name a workload identity federation
// credential configuration too, not only a service account key.
func TestCredentialsFileMayBeAnExternalAccount(t *testing.T) {
	w := newAuthWorld(t)
	w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(time.Hour))
	r := w.run(t, nil, "--bigquery-credentials-file="+w.configFile)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0: %v", r.code, r.report["error"])
	}
	wantFields(t, "the first log line's google_credentials", credentialsOf(t, "the first log line", r.firstLine(t)), map[string]string{
		"type": "external_account", "source": "bigquery.credentials_file", "file": w.configFile, "token_file": w.tokenFile,
	})
	if calls := w.google.Calls(); len(calls) == 0 {
		t.Error("no call reached BigQuery")
	}
}

// Each way the chain breaks fails the run at its first call to BigQuery
// with exit 2 (configuration: a retried pod fails the same way) and a
// message naming what failed and what to do; nothing reaches BigQuery
// without a token, and the run does not retry until a timeout.
func TestGoogleCredentialFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, w *authWorld)
		want  []string
	}{
		{"the token file is missing", func(t *testing.T, w *authWorld) {
			w.tokenFile = filepath.Join(w.dir, "not-mounted", "token")
			w.writeConfig(t, w.tokenFile, true)
		}, []string{"{tokenFile}", "credential_source.file", "projected", "serviceAccountToken", "gcp-wif-token", "/var/run/secrets/gcp-wif", "k8s/overlays/eks"}},
		{"the token file is unreadable", func(t *testing.T, w *authWorld) {
			if err := os.MkdirAll(w.tokenFile, 0o755); err != nil { // a directory where the token should be
				t.Fatal(err)
			}
		}, []string{"{tokenFile}", "credential_source.file", "projected", "gcp-wif-token"}},
		{"the token expired", func(t *testing.T, w *authWorld) {
			w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(-time.Hour))
		}, []string{"Security Token Service", "eks-ordermin", "eks-cluster", "invalid_grant", "expired", "{tokenFile}"}},
		{"the token is for another audience", func(t *testing.T, w *authWorld) {
			w.writeToken(t, "sts.amazonaws.com", time.Now().Add(time.Hour))
		}, []string{"Security Token Service", "eks-ordermin", "eks-cluster", "invalid_grant", "sts.amazonaws.com", "https:" + wifAudience}},
		{"impersonation is denied", func(t *testing.T, w *authWorld) {
			w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(time.Hour))
			w.google.SetDeny(true)
		}, []string{wifServiceAccount, "iam.serviceAccounts.getAccessToken", "roles/iam.workloadIdentityUser", "eks-ordermin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newAuthWorld(t)
			tc.setup(t, w)
			r := w.run(t, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + w.configFile})
			msg, _ := r.report["error"].(string)
			if r.code != 2 || r.report["error_kind"] != "config" {
				t.Errorf("exit %d (%v), want 2 (config): %s", r.code, r.report["error_kind"], msg)
			}
			for _, want := range tc.want {
				want = strings.ReplaceAll(want, "{tokenFile}", w.tokenFile)
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not name %q:\n%s", want, msg)
				}
			}
			for _, c := range w.google.Calls() {
				t.Errorf("a %s call (%s) reached BigQuery without a token", c.API, c.Method)
			}
			if r.elapsed > 15*time.Second {
				t.Errorf("the run took %s to fail: want a failure at the first call, not retries", r.elapsed)
			}
			if n := len(w.google.Exchanges()); n > 3 {
				t.Errorf("%d token exchanges: want the refusal taken as final", n)
			}
			w.noSecrets(t, r)
			creds := credentialsOf(t, "the first log line", r.firstLine(t))
			if creds["type"] != "external_account" {
				t.Errorf("first log line's credentials %v", creds)
			}
			t.Logf("exit %d in %s: %s", r.code, r.elapsed.Round(time.Millisecond), msg)
		})
	}
}

// Impersonation denied once the query has run: the Storage Read API
// call is the first to need a new token, and its failure names the
// service account and the missing role too (through gRPC, which would
// otherwise turn it into an Unauthenticated status read as a missing
// Storage Read API role), with exit 2.
func TestImpersonationDeniedAtTheStorageReadAPI(t *testing.T) {
	w := newAuthWorld(t)
	w.google.ExpiresIn, w.google.Lifetime = 1, time.Second
	w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(time.Hour))
	var once sync.Once
	hook := func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tables/anon") { // the result table's metadata: the last REST call before the read session
			once.Do(func() {
				w.google.SetDeny(true)
				time.Sleep(1500 * time.Millisecond) // every token issued so far expires
			})
		}
	}
	w.beforeREST.Store(&hook)
	r := w.run(t, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + w.configFile})
	msg, _ := r.report["error"].(string)
	if r.code != 2 || r.report["error_kind"] != "config" {
		t.Errorf("exit %d (%v), want 2 (config): %s", r.code, r.report["error_kind"], msg)
	}
	for _, want := range []string{"Storage Read API", wifServiceAccount, "roles/iam.workloadIdentityUser"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "readSessionUser") {
		t.Errorf("the error blames the Storage Read API's role:\n%s", msg)
	}
	var rpc int
	for _, c := range w.google.Calls() {
		if c.API == "grpc" {
			rpc++
		}
	}
	if rpc != 0 {
		t.Errorf("%d gRPC calls reached the Storage Read double without a token", rpc)
	}
	t.Logf("exit %d in %s: %s", r.code, r.elapsed.Round(time.Millisecond), msg)
}

// An STS that does not answer is not BigQuery that does not answer: the
// first call's bound (bigquery.read_session_timeout) ends the wait, and
// the message names the token endpoint; exit 4, as for any endpoint that
// did not answer (the Job's next pod retries).
func TestSecurityTokenServiceDoesNotAnswer(t *testing.T) {
	w := newAuthWorld(t)
	w.writeToken(t, w.google.DefaultAllowedAudience(), time.Now().Add(time.Hour))
	w.google.SetDelay(time.Minute)
	r := w.run(t, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + w.configFile}, "--bigquery-read-session-timeout=2s")
	msg, _ := r.report["error"].(string)
	if r.code != 4 || r.report["error_kind"] != "source" {
		t.Errorf("exit %d (%v), want 4 (source): %s", r.code, r.report["error_kind"], msg)
	}
	for _, want := range []string{w.google.TokenURL(), "bigquery.read_session_timeout=2s", "access token"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "no answer from BigQuery") {
		t.Errorf("the error blames BigQuery:\n%s", msg)
	}
	if r.elapsed > 15*time.Second {
		t.Errorf("the run took %s", r.elapsed)
	}
	t.Logf("exit %d in %s: %s", r.code, r.elapsed.Round(time.Millisecond), msg)
}
