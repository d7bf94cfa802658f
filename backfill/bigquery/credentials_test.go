package bigquery

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// `backfill check` and the run's first log line say which
// Google credentials the clients use and whose identity, from the
// settings, the environment and the file, and never a secret. The end to
// end tests through the auth library are in cmd/backfill
// (auth_e2e_test.go).

const (
	testAudience = "//iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/pool/providers/prov"
	testSA       = "backfill@proj.iam.gserviceaccount.com"
	secretKey    = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET\n-----END PRIVATE KEY-----\n"
)

func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cleanEnv leaves no ambient credentials: no GOOGLE_APPLICATION_CREDENTIALS
// and a HOME without gcloud's file.
func cleanEnv(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", dir)
	return dir
}

func TestDescribeCredentials(t *testing.T) {
	dir := cleanEnv(t)
	key := writeJSON(t, dir, "key.json", map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "0123abcd-secret-id", "private_key": secretKey,
		"client_email": testSA, "client_id": "1",
	})
	wif := writeJSON(t, dir, "wif.json", map[string]any{
		"type": "external_account", "audience": testAudience, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"token_url":                         "https://sts.googleapis.com/v1/token",
		"credential_source":                 map[string]any{"file": "/var/run/secrets/gcp-wif/token"},
		"service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" + testSA + ":generateAccessToken",
	})
	direct := writeJSON(t, dir, "direct.json", map[string]any{
		"type": "external_account", "audience": testAudience, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"credential_source": map[string]any{"file": "/var/run/secrets/gcp-wif/token"},
	})
	aws := writeJSON(t, dir, "aws.json", map[string]any{
		"type": "external_account", "audience": testAudience, "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
		"credential_source": map[string]any{"environment_id": "aws1", "regional_cred_verification_url": "https://sts.{region}.amazonaws.com"},
	})
	imp := writeJSON(t, dir, "imp.json", map[string]any{
		"type":                              "impersonated_service_account",
		"service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" + testSA + ":generateAccessToken",
		"source_credentials":                map[string]string{"type": "authorized_user", "refresh_token": "1//secret-refresh", "client_secret": "secret-client"},
	})
	gcloud := writeJSON(t, dir, ".config/gcloud/application_default_credentials.json", map[string]string{
		"type": "authorized_user", "refresh_token": "1//secret-refresh", "client_secret": "secret-client", "client_id": "c",
	})
	base := Config{Project: "p", ReadAPI: ReadStorage}
	for _, tc := range []struct {
		name string
		cfg  func(c *Config)
		env  string // GOOGLE_APPLICATION_CREDENTIALS
		home string // HOME, if not dir
		want backfill.GoogleCredentials
	}{
		{name: "a key file in bigquery.credentials_file: its client_email", cfg: func(c *Config) { c.CredentialsFile = key },
			want: backfill.GoogleCredentials{Type: "service_account", Source: "bigquery.credentials_file", File: key, ServiceAccount: testSA}},
		{name: "workload identity federation with impersonation", env: wif,
			want: backfill.GoogleCredentials{Type: "external_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: wif, Audience: testAudience,
				TokenFile: "/var/run/secrets/gcp-wif/token", TokenURL: "https://sts.googleapis.com/v1/token", ServiceAccount: testSA}},
		{name: "workload identity federation, direct resource access, default token URL", env: direct,
			want: backfill.GoogleCredentials{Type: "external_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: direct, Audience: testAudience,
				TokenFile: "/var/run/secrets/gcp-wif/token", TokenURL: "https://sts.googleapis.com/v1/token"}},
		{name: "an AWS source", env: aws,
			want: backfill.GoogleCredentials{Type: "external_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: aws, Audience: testAudience,
				CredentialSource: "aws", TokenURL: "https://sts.googleapis.com/v1/token"}},
		{name: "bigquery.credentials_file wins over GOOGLE_APPLICATION_CREDENTIALS", cfg: func(c *Config) { c.CredentialsFile = key }, env: wif,
			want: backfill.GoogleCredentials{Type: "service_account", Source: "bigquery.credentials_file", File: key, ServiceAccount: testSA}},
		{name: "impersonated_service_account", env: imp,
			want: backfill.GoogleCredentials{Type: "impersonated_service_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: imp, ServiceAccount: testSA}},
		{name: "gcloud's file", home: dir,
			want: backfill.GoogleCredentials{Type: "authorized_user", Source: "gcloud application default credentials", File: gcloud}},
		{name: "no file: the metadata server (GKE Workload Identity)", home: t.TempDir(),
			want: backfill.GoogleCredentials{Type: "metadata_server", Source: "metadata server"}},
		{name: "a file that is not there", env: filepath.Join(dir, "missing.json"),
			want: backfill.GoogleCredentials{Source: "GOOGLE_APPLICATION_CREDENTIALS", File: filepath.Join(dir, "missing.json")}},
		{name: "an emulator: none", env: wif, cfg: func(c *Config) { c.Endpoint, c.ReadAPI = "http://127.0.0.1:9050", ReadREST },
			want: backfill.GoogleCredentials{Type: "none", Source: "none"}},
		{name: "an emulator with a plaintext Storage Read API: none", env: wif, cfg: func(c *Config) {
			c.Endpoint, c.StorageEndpoint, c.StoragePlaintext = "http://127.0.0.1:9050", "127.0.0.1:9060", true
		}, want: backfill.GoogleCredentials{Type: "none", Source: "none"}},
		{name: "an emulator's REST API but Google's Storage Read API: credentials", env: wif, cfg: func(c *Config) { c.Endpoint = "http://127.0.0.1:9050" },
			want: backfill.GoogleCredentials{Type: "external_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: wif, Audience: testAudience,
				TokenFile: "/var/run/secrets/gcp-wif/token", TokenURL: "https://sts.googleapis.com/v1/token", ServiceAccount: testSA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", tc.env)
			home := tc.home
			if home == "" {
				home = t.TempDir()
			}
			t.Setenv("HOME", home)
			c := base
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			got := DescribeCredentials(c)
			problem := got.Problem
			got.Problem = ""
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if strings.Contains(tc.name, "not there") != (problem != "") {
				t.Errorf("problem %q", problem)
			}
			b, _ := json.Marshal(DescribeCredentials(c))
			for _, secret := range []string{"TOP-SECRET", "PRIVATE KEY", "0123abcd-secret-id", "secret-refresh", "secret-client"} {
				if strings.Contains(string(b), secret) || strings.Contains(summary(got), secret) {
					t.Errorf("the description shows a secret (%s): %s", secret, b)
				}
			}
		})
	}
}

// A credentials file the job cannot use fails before any call, with exit
// 2, naming the file.
func TestUnusableCredentialsFileIsAConfigurationError(t *testing.T) {
	dir := cleanEnv(t)
	notJSON := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(notJSON, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := writeJSON(t, dir, "unknown.json", map[string]string{"type": "carrier_pigeon"})
	for _, file := range []string{filepath.Join(dir, "missing.json"), notJSON, unknown} {
		s := New(Config{Project: "p", CredentialsFile: file, ReadAPI: ReadStorage}, nil)
		_, err := s.credentials()
		if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "bigquery.credentials_file") {
			t.Errorf("%s: err %v (kind %s), want a configuration error naming the file and the setting", file, err, backfill.KindOf(err))
		}
	}
}

// A token endpoint that failed or did not answer is worth a retry (exit
// 4); what it refused is not (exit 2). The messages never show a URL's
// query.
func TestTokenFailureKinds(t *testing.T) {
	t.Parallel()
	d := backfill.GoogleCredentials{Type: "external_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: "/etc/gcp-wif/credential-config.json",
		Audience: testAudience, TokenURL: "https://sts.googleapis.com/v1/token", ServiceAccount: testSA}
	for _, tc := range []struct {
		err  error
		want backfill.Kind
		in   []string
	}{
		{errors.New(`credentials: status code 503: {"error":"temporarily_unavailable","error_description":"try later"}`), backfill.KindSource, []string{"pool, provider prov", "temporarily_unavailable"}},
		{errors.New(`credentials: status code 400: {"error":"invalid_target","error_description":"no such provider"}`), backfill.KindConfig, []string{"invalid_target", "audience names no usable provider"}},
		{errors.New(`credentials: status code 404: {"error":{"code":404,"message":"Not found","status":"NOT_FOUND"}}`), backfill.KindConfig, []string{testSA, "NOT_FOUND"}},
		{&url.Error{Op: "Post", URL: "https://sts.googleapis.com/v1/token?secret=x", Err: errors.New("dial tcp: connection refused")}, backfill.KindSource, []string{"https://sts.googleapis.com/v1/token did not answer"}},
		{errors.New("credentials: executables need to be explicitly allowed"), backfill.KindConfig, []string{"executables"}},
	} {
		te := explainToken(d, tc.err)
		if te.kind != tc.want {
			t.Errorf("%v: kind %s, want %s", tc.err, te.kind, tc.want)
		}
		for _, s := range tc.in {
			if !strings.Contains(te.Error(), s) {
				t.Errorf("%v: message does not name %q: %s", tc.err, s, te)
			}
		}
		if strings.Contains(te.Error(), "secret=x") {
			t.Errorf("the message shows a URL's query: %s", te)
		}
		// classify keeps the kind and the message, wherever the client wrapped it.
		if got := classify(&url.Error{Op: "Get", URL: "https://bigquery.googleapis.com/x", Err: te}, "looking up"); backfill.KindOf(got) != tc.want || !strings.Contains(got.Error(), te.Error()) {
			t.Errorf("classify: %v (kind %s)", got, backfill.KindOf(got))
		}
	}
}
