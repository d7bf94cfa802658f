package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// The 401 answers of ksqlDB and of the Schema Registry.
const (
	ksqlUnauthorized = `{"@type":"generic_error","error_code":40100,"message":"Unauthorized"}`
	srUnauthorized   = `{"error_code":401,"message":"Unauthorized"}`
)

// proxy serves target (a double) through an HTTP or HTTPS server that,
// when user is set, demands those basic-auth credentials and answers
// others 401 with body. The doubles themselves keep talking to each other
// without credentials (ksqlDB's pull queries ask the registry for the key
// schema).
func proxy(t *testing.T, target, user, pass, body string, useTLS bool) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(body))
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	var s *httptest.Server
	if useTLS {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withUser puts user:pass@ into an http(s) URL.
func withUser(raw, user, pass string) string {
	u, _ := url.Parse(raw)
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// TestSecretsNeverAppearInOutput runs the binary, succeeding and failing,
// with a SASL password, registry and ksqlDB passwords given by flag,
// environment, file and inside URLs, at debug log level, and scans stdout,
// stderr and the report file for every secret (raw, URL-escaped, and as
// the basic-auth header value).
func TestSecretsNeverAppearInOutput(t *testing.T) {
	const (
		kafkaPW  = "kafka-SASL-pw-7f3a9c"
		kafkaBad = "kafka-WRONG-pw-5e5e5e"
		srPW     = "sr-basic-pw-41d0e2!"
		srBad    = "sr-WRONG-pw-1a1a1a"
		ksqlPW   = "ksql-basic-pw-9b77aa$"
		ksqlBad  = "ksql-WRONG-pw-2b2b2b"
	)
	var forms []string
	for _, s := range []struct{ user, pw string }{{"kafka-user", kafkaPW}, {"kafka-user", kafkaBad}, {"sr-user", srPW}, {"sr-user", srBad}, {"ksql-user", ksqlPW}, {"ksql-user", ksqlBad}} {
		forms = append(forms, s.pw, url.QueryEscape(s.pw), url.PathEscape(s.pw), url.UserPassword(s.user, s.pw).String(),
			base64.StdEncoding.EncodeToString([]byte(s.user+":"+s.pw)))
	}

	s := startStack(t, stack.Options{Users: 200})
	sr := proxy(t, s.Registry.URL(), "sr-user", srPW, srUnauthorized, false)
	ksql := proxy(t, s.KsqlDB.URL(), "ksql-user", ksqlPW, ksqlUnauthorized, false)
	sasl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, stack.Topic), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "kafka-user", kafkaPW))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sasl.Close)
	dir := t.TempDir()
	srFile := writeFile(t, dir, "sr.pw", []byte(srPW+"\n"))
	down := "http://" + closedAddr(t)
	saslFlags := []string{"--kafka-brokers=" + strings.Join(sasl.ListenAddrs(), ","), "--kafka-security-protocol=SASL_PLAINTEXT",
		"--kafka-sasl-mechanism=SCRAM-SHA-256", "--kafka-sasl-username=kafka-user"}
	srInURL := "--schema-registry-url=" + withUser(sr.URL, "sr-user", srPW)
	ksqlInURL := "--ksqldb-url=" + withUser(ksql.URL, "ksql-user", ksqlPW)

	for _, run := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		words string // must appear in the output: the run did what it is named for
	}{
		{"SASL produce, passwords in env and URLs", []string{"BACKFILL_KAFKA_SASL_PASSWORD=" + kafkaPW},
			append([]string{srInURL, ksqlInURL, "--ksqldb-verify=none"}, saslFlags...), 0, "sasl_mechanism=SCRAM-SHA-256"},
		{"verified run, passwords in a file and a flag", nil,
			[]string{"--schema-registry-url=" + sr.URL, "--schema-registry-username=sr-user", "--schema-registry-password-file=" + srFile,
				"--ksqldb-url=" + ksql.URL, "--ksqldb-username=ksql-user", "--ksqldb-password=" + ksqlPW}, 0, "ksqlDB verification passed"},
		{"wrong SASL password, librdkafka security debug on", []string{"BACKFILL_KAFKA_SASL_PASSWORD=" + kafkaBad},
			append([]string{srInURL, ksqlInURL, "--kafka-connect-timeout=3s", "--kafka-properties=debug=security"}, saslFlags...), -1, "msg=librdkafka"},
		{"wrong registry password in the URL", nil,
			[]string{"--schema-registry-url=" + withUser(sr.URL, "sr-user", srBad), ksqlInURL}, backfill.ExitConfig, "refused user"},
		{"wrong ksqlDB password", []string{"BACKFILL_KSQLDB_PASSWORD=" + ksqlBad},
			[]string{srInURL, "--ksqldb-url=" + ksql.URL, "--ksqldb-username=ksql-user"}, backfill.ExitConfig, "refused the credentials"},
		{"registry unreachable, password in the URL", nil,
			[]string{"--schema-registry-url=" + withUser(down, "sr-user", srPW), "--schema-registry-retries=1", ksqlInURL}, backfill.ExitUnavailable, "connection refused"},
		{"ksqlDB unreachable, password in the URL", nil,
			[]string{srInURL, "--ksqldb-url=" + withUser(down, "ksql-user", ksqlPW), "--ksqldb-retries=1"}, backfill.ExitUnavailable, "connection refused"},
		{"invalid settings", []string{"BACKFILL_KAFKA_SASL_PASSWORD=" + kafkaPW, "BACKFILL_KSQLDB_PASSWORD=" + ksqlPW},
			append([]string{srInURL, "--pipeline-workers=0", "--kafka-sasl-username=", "--ksqldb-url=" + ksql.URL, "--ksqldb-username=ksql-user"}, saslFlags[1:]...), backfill.ExitConfig, "pipeline.workers"},
		{"registry password in the URL and in a setting", nil,
			[]string{srInURL, "--schema-registry-password=" + srBad, ksqlInURL}, backfill.ExitConfig, "keep one"},
		{"malformed URL holding a password", nil,
			[]string{"--schema-registry-url=http://sr-user:" + srPW + "@host:port:8081", ksqlInURL}, backfill.ExitConfig, "schema_registry.url"},
	} {
		t.Run(run.name, func(t *testing.T) {
			report := filepath.Join(dir, strings.ReplaceAll(run.name, " ", "_")+".json")
			r := runJobEnv(t, s, run.env, append(run.args, "--log-level=debug", "--report-file="+report)...)
			if run.code >= 0 && r.code != run.code || run.code < 0 && r.code == 0 {
				t.Fatalf("exit %d, want %d: %s\n%s", r.code, run.code, r.report.Error, r.stderr)
			}
			file, err := os.ReadFile(report)
			if err != nil && r.code != backfill.ExitConfig {
				t.Fatalf("no report file: %v", err)
			}
			all := r.stdout + "\n" + r.stderr + "\n" + string(file)
			if !strings.Contains(all, run.words) {
				t.Fatalf("the output lacks %q:\n%s", run.words, all)
			}
			for _, f := range forms {
				if i := strings.Index(all, f); i >= 0 {
					t.Fatalf("secret %q appears in the output:\n…%s…", f, all[max(0, i-300):min(len(all), i+100)])
				}
			}
			t.Logf("exit %d: %s", r.code, r.report.Error)
		})
	}
	if n := stored(sasl); n != 200 {
		t.Errorf("the SASL cluster holds %d records, want the 200 of the successful run", n)
	}
}

// selfSigned returns a TLS config for a server on 127.0.0.1 and the PEM of
// its self-signed certificate, which is also its CA.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, certPEM
}

// TestTLSVerificationIsOnByDefault serves the registry and ksqlDB over
// HTTPS with a certificate no system CA signed: without a CA file the run
// refuses them before writing; with the CA file it succeeds; skipping
// verification works only when asked for, with a warning.
func TestTLSVerificationIsOnByDefault(t *testing.T) {
	s := startStack(t, stack.Options{Users: 100})
	sr := httptest.NewTLSServer(s.Registry.Handler())
	t.Cleanup(sr.Close)
	ksql := proxy(t, s.KsqlDB.URL(), "", "", "", true)
	ca := writeFile(t, t.TempDir(), "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sr.Certificate().Raw}))
	srURL, ksqlURL := "--schema-registry-url="+sr.URL, "--ksqldb-url="+ksql.URL

	r := runJob(t, s, srURL)
	if r.code != backfill.ExitConfig || !strings.Contains(r.report.Error, "schema_registry.tls_ca_file") || r.report.RecordsProduced != 0 {
		t.Fatalf("registry with an untrusted certificate: exit %d, error %q", r.code, r.report.Error)
	}
	r = runJob(t, s, ksqlURL, "--ksqldb-retries=1")
	if r.code == 0 || r.report.RecordsProduced != 0 || !strings.Contains(r.report.Error, "certificate") {
		t.Fatalf("ksqlDB with an untrusted certificate: exit %d, error %q", r.code, r.report.Error)
	}
	if r.code != backfill.ExitConfig {
		t.Logf("NOTE: an untrusted ksqlDB certificate exits %d (%s), the registry's exits 2: %s", r.code, r.report.ErrorKind, r.report.Error)
	}
	if n := stored(s.Kafka); n != 0 {
		t.Fatalf("%d records written to untrusted endpoints' topic", n)
	}

	r = runJob(t, s, srURL, ksqlURL, "--schema-registry-tls-ca-file="+ca, "--ksqldb-tls-ca-file="+ca)
	if r.code != 0 || r.report.Verification == nil || r.report.Verification.Matched != 100 {
		t.Fatalf("with the CA file: exit %d, error %q\n%s", r.code, r.report.Error, r.stderr)
	}
	if strings.Contains(r.stderr, "insecure_skip_verify is on") {
		t.Fatalf("a verified run warns about skipped verification:\n%s", r.stderr)
	}

	r = runJob(t, s, srURL, ksqlURL, "--schema-registry-tls-insecure-skip-verify", "--ksqldb-tls-insecure-skip-verify")
	if r.code != 0 {
		t.Fatalf("with verification skipped: exit %d, error %q", r.code, r.report.Error)
	}
	for _, w := range []string{"schema_registry.tls_insecure_skip_verify is on", "ksqldb.tls_insecure_skip_verify is on"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("no warning %q in:\n%s", w, r.stderr)
		}
	}
}

// TestKafkaTLS produces to a kfake cluster serving TLS with a self-signed
// certificate: refused without the CA, accepted with it, and accepted with
// verification skipped only when asked for, with a warning.
func TestKafkaTLS(t *testing.T) {
	s := startStack(t, stack.Options{Users: 50})
	cfg, certPEM := selfSigned(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, stack.Topic), kfake.TLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ca := writeFile(t, t.TempDir(), "ca.pem", certPEM)
	// ksqlDB reads the sandbox's cluster, not this one: full mode and no
	// verification, or the job would wait for ksqlDB to aggregate this topic.
	base := []string{"--kafka-brokers=" + strings.Join(c.ListenAddrs(), ","), "--kafka-security-protocol=SSL", "--ksqldb-verify=none", "--mode=full"}

	start := time.Now()
	r := runJob(t, s, append(base, "--kafka-connect-timeout=3s")...)
	if r.code != backfill.ExitConfig || !strings.Contains(r.report.Error, "kafka.tls_ca_file") || r.report.RecordsProduced != 0 || stored(c) != 0 {
		t.Fatalf("untrusted broker certificate: exit %d, error %q", r.code, r.report.Error)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s with a 3s connect timeout", d)
	}

	r = runJob(t, s, append(base, "--kafka-tls-ca-file="+ca)...)
	if r.code != 0 || r.report.RecordsAcked != 50 || stored(c) != 50 {
		t.Fatalf("with the CA file: exit %d, error %q\n%s", r.code, r.report.Error, r.stderr)
	}
	if strings.Contains(r.stderr, "tls_insecure_skip_verify is on") {
		t.Fatal("a verified run warns about skipped verification")
	}

	r = runJob(t, s, append(base, "--kafka-tls-insecure-skip-verify")...)
	if r.code != 0 || stored(c) != 100 {
		t.Fatalf("verification skipped: exit %d, error %q", r.code, r.report.Error)
	}
	if !strings.Contains(r.stderr, "kafka.tls_insecure_skip_verify is on") {
		t.Errorf("no warning about skipped broker verification:\n%s", r.stderr)
	}
}
