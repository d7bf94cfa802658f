package bigquery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/bigquery"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// The Google credentials of both clients (REST and Storage Read API):
// found as the auth library finds Application Default Credentials, built
// once per Source by the library (cloud.google.com/go/auth, which both
// clients use), described without a secret, and with every failure to get
// a token explained: what failed, and what to do.

// Credential types a description names besides the files' own types.
const (
	CredentialsMetadataServer = "metadata_server"
	CredentialsNone           = "none"
)

// The files' types (the "type" field) the job names in its messages.
const (
	typeExternalAccount = "external_account"
	typeImpersonated    = "impersonated_service_account"
	typeServiceAccount  = "service_account"
	typeAuthorizedUser  = "authorized_user"
)

// Where the credentials come from.
const (
	sourceSetting  = "bigquery.credentials_file"
	sourceEnv      = "GOOGLE_APPLICATION_CREDENTIALS"
	sourceGcloud   = "gcloud application default credentials"
	sourceMetadata = "metadata server"
	sourceNone     = "none"
)

// The EKS overlay's paths (k8s/overlays/eks), named in the messages.
const (
	eksOverlay       = "k8s/overlays/eks"
	eksTokenVolume   = "gcp-wif-token"
	eksTokenDir      = "/var/run/secrets/gcp-wif"
	eksTokenFile     = eksTokenDir + "/token"
	eksCredentialCfg = "/etc/gcp-wif/credential-config.json"
)

// credentialsFile is what the job reads of a credentials file: only
// fields that hold no secret (a key file's private_key, an authorized
// user's refresh_token and client_secret are never decoded).
type credentialsFile struct {
	Type                           string `json:"type"`
	ClientEmail                    string `json:"client_email"`
	Audience                       string `json:"audience"`
	TokenURL                       string `json:"token_url"`
	ServiceAccountImpersonationURL string `json:"service_account_impersonation_url"`
	CredentialSource               *struct {
		File          string          `json:"file"`
		URL           string          `json:"url"`
		EnvironmentID string          `json:"environment_id"`
		Executable    json.RawMessage `json:"executable"`
		Certificate   json.RawMessage `json:"certificate"`
	} `json:"credential_source"`
}

// defaultTokenURL is Google's STS endpoint, which an external account
// without token_url uses.
const defaultTokenURL = "https://sts.googleapis.com/v1/token"

// authenticates reports whether any client of c sends credentials: not
// when the REST endpoint is http:// (an emulator) and the Storage Read
// API is either not used or dialled in plaintext.
func (c *Config) authenticates() bool { return c.restAuth() || c.storageAuth() }

func (c *Config) restAuth() bool { return !strings.HasPrefix(c.Endpoint, "http://") }

func (c *Config) storageAuth() bool {
	if c.ReadAPI == ReadREST {
		return false
	}
	return !(c.StorageEndpoint != "" && (c.StoragePlaintext || strings.HasPrefix(c.StorageEndpoint, "http://")))
}

// DescribeCredentials says which Google credentials the clients of cfg
// use, from the settings, the environment and the credentials file,
// without a network call and without any secret: for `backfill check` and
// the run's first log line.
func DescribeCredentials(cfg Config) backfill.GoogleCredentials {
	d, _ := findCredentials(cfg)
	return d
}

// findCredentials finds the credentials as the auth library's
// DetectDefault does (credentials/detect.go): bigquery.credentials_file,
// else the file GOOGLE_APPLICATION_CREDENTIALS names, else gcloud's
// application default credentials file, else the metadata server. It
// returns their description and the file's content (nil without a file,
// or when it cannot be read: Problem says why).
func findCredentials(cfg Config) (backfill.GoogleCredentials, []byte) {
	var d backfill.GoogleCredentials
	if !cfg.authenticates() {
		d.Type, d.Source = CredentialsNone, sourceNone
		return d, nil
	}
	switch {
	case cfg.CredentialsFile != "":
		d.Source, d.File = sourceSetting, cfg.CredentialsFile
	case os.Getenv(sourceEnv) != "":
		d.Source, d.File = sourceEnv, os.Getenv(sourceEnv)
	default:
		if f := wellKnownFile(); f != "" {
			if _, err := os.Stat(f); err == nil {
				d.Source, d.File = sourceGcloud, f
			}
		}
	}
	if d.File == "" {
		d.Type, d.Source = CredentialsMetadataServer, sourceMetadata
		return d, nil
	}
	b, err := os.ReadFile(d.File)
	if err != nil {
		d.Problem = "cannot be read: " + err.Error()
		return d, nil
	}
	var f credentialsFile
	if err := json.Unmarshal(b, &f); err != nil {
		d.Problem = "is not a JSON credentials file: " + err.Error()
		return d, nil
	}
	d.Type = f.Type
	switch f.Type {
	case "":
		d.Problem = `has no "type"`
	case typeServiceAccount:
		d.ServiceAccount = f.ClientEmail
	case typeExternalAccount:
		d.Audience, d.TokenURL = f.Audience, f.TokenURL
		if d.TokenURL == "" {
			d.TokenURL = defaultTokenURL
		}
		d.ServiceAccount = impersonated(f.ServiceAccountImpersonationURL)
		if cs := f.CredentialSource; cs != nil {
			switch {
			case cs.File != "":
				d.TokenFile = cs.File
			case strings.HasPrefix(cs.EnvironmentID, "aws"):
				d.CredentialSource = "aws"
			case cs.URL != "":
				d.CredentialSource = "url"
			case len(cs.Executable) > 0:
				d.CredentialSource = "executable"
			case len(cs.Certificate) > 0:
				d.CredentialSource = "certificate"
			}
		}
	case typeImpersonated:
		d.ServiceAccount = impersonated(f.ServiceAccountImpersonationURL)
	}
	return d, b
}

// wellKnownFile is gcloud's application default credentials file, where
// the auth library looks for it (internal/credsfile GetWellKnownFileName).
func wellKnownFile() string {
	home := os.Getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return ""
		}
	}
	return filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
}

var impersonationURL = regexp.MustCompile(`serviceAccounts/([^/:]+):generateAccessToken`)

// impersonated is the service account a service_account_impersonation_url
// names.
func impersonated(u string) string {
	if m := impersonationURL.FindStringSubmatch(u); m != nil {
		return m[1]
	}
	return ""
}

// summary names credentials in a message: "external_account from
// GOOGLE_APPLICATION_CREDENTIALS=/etc/gcp-wif/credential-config.json,
// impersonating sa@p.iam.gserviceaccount.com".
func summary(d backfill.GoogleCredentials) string {
	s := d.Type
	if s == "" {
		s = "credentials"
	}
	switch {
	case d.File != "" && d.Source == sourceGcloud:
		s += " from gcloud's application default credentials " + d.File
	case d.File != "":
		s += " from " + d.Source + "=" + d.File
	case d.Type == CredentialsMetadataServer:
		s = "the metadata server's (no credentials file: neither bigquery.credentials_file nor GOOGLE_APPLICATION_CREDENTIALS is set)"
	}
	switch {
	case d.ServiceAccount != "" && d.Type == typeServiceAccount:
		s += ", service account " + d.ServiceAccount
	case d.ServiceAccount != "":
		s += ", impersonating " + d.ServiceAccount
	}
	return "Google credentials: " + s
}

// googleAuth is one Source's credentials, built on first use and shared
// by its clients, REST and Storage Read API: one token, refreshed by the
// library, for both.
type googleAuth struct {
	once  sync.Once
	creds *auth.Credentials
	err   error
	w     *explaining
}

// failedSince returns the last failure to get a token since t, if any: a
// REST call whose deadline ended while it waited for a token returns the
// context's error alone (google.golang.org/api internal/gensupport
// send.go replaces the client's error with ctx.Err()).
func (a *googleAuth) failedSince(t time.Time) (*tokenError, bool) {
	if a == nil || a.w == nil {
		return nil, false
	}
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	if a.w.last == nil || a.w.lastAt.Before(t) {
		return nil, false
	}
	return a.w.last, true
}

// credentials returns the credentials of both clients, built once.
func (s *Source) credentials() (*auth.Credentials, error) {
	s.auth.once.Do(func() {
		d, content := findCredentials(s.cfg)
		s.auth.creds, s.auth.w, s.auth.err = newCredentials(d, content)
		if s.auth.err == nil {
			s.log.Debug("google credentials ready", "google_credentials", d)
		}
	})
	return s.auth.creds, s.auth.err
}

// scopes are the OAuth scopes the job asks for: BigQuery's, which the
// Storage Read API accepts too.
var scopes = []string{bigquery.Scope}

// newCredentials builds the credentials d describes, from the file's
// content (none: the metadata server), with the auth library, and wraps
// their token provider so that a failure to get a token is explained.
// A file the library cannot use is refused here, before any call, with
// exit 2.
func newCredentials(d backfill.GoogleCredentials, content []byte) (*auth.Credentials, *explaining, error) {
	opts := &credentials.DetectOptions{Scopes: scopes}
	var creds *auth.Credentials
	var err error
	switch {
	case d.Problem != "":
		return nil, nil, backfill.Errorf(backfill.KindConfig, "%s: the file %s: set %s (or GOOGLE_APPLICATION_CREDENTIALS) to a service account key or a credential configuration (on EKS: %s, mounted by %s)",
			summary(d), d.Problem, sourceSetting, eksCredentialCfg, eksOverlay)
	case content == nil:
		// No file: the auth library asks the metadata server, if any.
		if creds, err = credentials.DetectDefault(opts); err != nil {
			return nil, nil, backfill.Errorf(backfill.KindConfig, "%s: %w: on GKE, enable Workload Identity for the pod's Kubernetes service account; elsewhere (EKS: %s) set GOOGLE_APPLICATION_CREDENTIALS to a workload identity federation credential configuration (%s), or bigquery.credentials_file",
				summary(d), err, eksOverlay, eksCredentialCfg)
		}
	default:
		// The file's own type: bigquery.credentials_file may hold a key or
		// a credential configuration alike.
		if creds, err = credentials.NewCredentialsFromJSON(credentials.CredType(d.Type), content, opts); err != nil {
			return nil, nil, backfill.Errorf(backfill.KindConfig, "%s: the auth library cannot use the file: %w: it must be a service account key (service_account), a workload identity federation credential configuration (external_account, as `gcloud iam workload-identity-pools create-cred-config` writes it), impersonated_service_account or authorized_user",
				summary(d), err)
		}
	}
	w := &explaining{tp: creds.TokenProvider, desc: d}
	return auth.NewCredentials(&auth.CredentialsOptions{
		TokenProvider:          w,
		JSON:                   creds.JSON(),
		ProjectIDProvider:      auth.CredentialsPropertyFunc(creds.ProjectID),
		QuotaProjectIDProvider: auth.CredentialsPropertyFunc(creds.QuotaProjectID),
		UniverseDomainProvider: auth.CredentialsPropertyFunc(creds.UniverseDomain),
	}), w, nil
}

// explaining is the library's token provider, whose failures it explains.
// The library caches and refreshes the token; a refresh reads an external
// account's token file again, so a rotated projected token is used.
type explaining struct {
	tp   auth.TokenProvider
	desc backfill.GoogleCredentials

	mu     sync.Mutex
	last   *tokenError // the last failure, for failedSince
	lastAt time.Time
}

// Token implements auth.TokenProvider.
func (e *explaining) Token(ctx context.Context) (*auth.Token, error) {
	t, err := e.tp.Token(ctx)
	var te *tokenError
	switch {
	case err == nil:
		return t, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The call's bound ended while a token endpoint kept it waiting:
		// say which, rather than let it pass for BigQuery not answering.
		te = tokenErrorf(backfill.KindSource, err, "%s: getting an access token: %s did not answer before the call's deadline: check that the pod can reach it (egress, DNS, proxy); the Job's next pod retries",
			summary(e.desc), endpointOf(err, e.desc))
	case ctx.Err() != nil:
		return nil, err // the run is stopping
	default:
		te = explainToken(e.desc, err)
	}
	e.mu.Lock()
	e.last, e.lastAt = te, time.Now()
	e.mu.Unlock()
	return nil, te
}

// endpointOf names the endpoint a token request failed at: the URL of
// err's *url.Error without its query (which may hold a secret), else the
// credentials' token endpoint.
func endpointOf(err error, d backfill.GoogleCredentials) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if u, perr := url.Parse(uerr.URL); perr == nil {
			return u.Scheme + "://" + u.Host + u.Path
		}
	}
	switch {
	case d.TokenURL != "":
		return d.TokenURL
	case d.Type == CredentialsMetadataServer:
		return "the metadata server"
	}
	return "the token endpoint"
}

// tokenError is a failure to get an access token, explained: its kind
// (exit 2 for what a retry does not change, 4 for an endpoint that did not
// answer or answered a server error) and a message naming what failed and
// what to do. The clients return it from the call that needed the token:
// the REST client inside a *url.Error, the gRPC client as is, as the
// status it carries (GRPCStatus), so that classify and classifyRPC find it.
type tokenError struct {
	kind backfill.Kind
	msg  string
	err  error
}

func (e *tokenError) Error() string { return e.msg }
func (e *tokenError) Unwrap() error { return e.err }

// GRPCStatus makes gRPC keep the error as is when per-RPC credentials
// return it (internal/transport/http2_client.go: an error with a status is
// returned unchanged; any other becomes a new status, losing the chain).
func (e *tokenError) GRPCStatus() *status.Status { return status.New(codes.Unauthenticated, e.msg) }

// asTokenError returns the explained token failure in err's chain, if any.
func asTokenError(err error) (*tokenError, bool) {
	var te *tokenError
	ok := errors.As(err, &te)
	return te, ok
}

func tokenErrorf(kind backfill.Kind, err error, format string, args ...any) *tokenError {
	return &tokenError{kind: kind, msg: fmt.Sprintf(format, args...), err: err}
}

// libraryStatus matches the auth library's error for an HTTP answer
// other than 2xx from STS, IAM Credentials or Google's OAuth endpoint
// (stsexchange/sts_exchange.go, impersonate/impersonate.go:
// "credentials: status code %d: %s", the body).
var libraryStatus = regexp.MustCompile(`(?s)status code (\d{3}): (.*)$`)

// oauthError is an OAuth 2.0 error response (RFC 6749 5.2), as STS and
// Google's OAuth token endpoint refuse a request.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// googleError is a Google API error (google.rpc.Status), as IAM
// Credentials refuses a request.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// explainToken explains the library's failure err to get a token with
// the credentials d.
func explainToken(d backfill.GoogleCredentials, err error) *tokenError {
	head := summary(d)
	if d.Type == typeExternalAccount && d.TokenFile != "" {
		if problem := tokenFileProblem(d.TokenFile); problem != "" {
			return tokenErrorf(backfill.KindConfig, err, "%s: the subject token file %s (credential_source.file of %s) %s: it is the projected serviceAccountToken volume (%s mounts the volume %s at %s, the token at %s): check that the pod mounts it there (kubectl describe pod: Volumes and Mounts) and that credential_source.file names the mounted file",
				head, d.TokenFile, d.File, problem, eksOverlay, eksTokenVolume, eksTokenDir, eksTokenFile)
		}
	}
	if m := libraryStatus.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		kind := backfill.KindConfig
		if code >= 500 || code == 429 {
			kind = backfill.KindSource // a retry (the Job's next pod) may pass
		}
		body := []byte(strings.TrimSpace(m[2]))
		var oe oauthError
		var ge googleError
		switch {
		case json.Unmarshal(body, &oe) == nil && oe.Error != "" && d.Type == typeExternalAccount:
			return explainSTS(d, kind, code, oe, err)
		case json.Unmarshal(body, &oe) == nil && oe.Error != "":
			return tokenErrorf(kind, err, "%s: Google's OAuth token endpoint refused them: HTTP %d %s: %s: for a service account key, check that the key still exists (gcloud iam service-accounts keys list) and is enabled, or create a new one; better, use workload identity federation (%s) or GKE Workload Identity",
				head, code, oe.Error, oe.Description, eksOverlay)
		case json.Unmarshal(body, &ge) == nil && ge.Error.Status != "" && d.ServiceAccount != "" && d.Type != typeServiceAccount:
			return explainImpersonation(d, kind, code, ge, err)
		}
		return tokenErrorf(kind, err, "%s: getting an access token failed: %v", head, err)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return tokenErrorf(backfill.KindSource, err, "%s: getting an access token: %s did not answer (%v): check that the pod can reach it (egress, DNS, proxy); the Job's next pod retries",
			head, endpointOf(err, d), uerr.Err)
	}
	if d.Type == CredentialsMetadataServer {
		return tokenErrorf(backfill.KindConfig, err, "%s: the metadata server gave no token: %v: on GKE, check the Kubernetes service account's iam.gke.io/gcp-service-account annotation and that the Google service account grants it roles/iam.workloadIdentityUser; elsewhere (EKS: %s) set GOOGLE_APPLICATION_CREDENTIALS to a credential configuration",
			head, err, eksOverlay)
	}
	return tokenErrorf(backfill.KindConfig, err, "%s: getting an access token failed: %v", head, err)
}

// tokenFileProblem says what is wrong with a subject token file, or "".
func tokenFileProblem(path string) string {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case err != nil:
		return "cannot be read (" + err.Error() + ")"
	case len(strings.TrimSpace(string(b))) == 0:
		return "is empty"
	}
	return ""
}

var providerName = regexp.MustCompile(`^//iam\.googleapis\.com/(?:projects/([^/]+)/)?locations/[^/]+/(workloadIdentityPools|workforcePools)/([^/]+)/providers/([^/]+)$`)

// provider names the workload identity pool and provider of an external
// account's audience (ok false for a workforce pool's, or another form).
func provider(audience string) (project, pool, prov string, ok bool) {
	m := providerName.FindStringSubmatch(audience)
	if m == nil || m[2] != "workloadIdentityPools" {
		return "", "", "", false
	}
	return m[1], m[3], m[4], true
}

// explainSTS explains STS's refusal to exchange the subject token.
func explainSTS(d backfill.GoogleCredentials, kind backfill.Kind, code int, oe oauthError, err error) *tokenError {
	where := "audience " + d.Audience
	if project, pool, prov, ok := provider(d.Audience); ok {
		where = fmt.Sprintf("workload identity pool %s, provider %s (project %s; audience %s)", pool, prov, project, d.Audience)
	}
	from := "the subject token"
	if d.TokenFile != "" {
		from = "the token in " + d.TokenFile
	}
	msg := fmt.Sprintf("%s: the Security Token Service (%s) refused to exchange %s for %s: HTTP %d %s: %s", summary(d), d.TokenURL, from, where, code, oe.Error, strings.TrimRight(oe.Description, "."))
	var why []string
	if oe.Error == "invalid_target" {
		why = append(why, "the audience names no usable provider (a wrong project number, pool or provider id, or a disabled or deleted one): check the credential configuration's audience")
	}
	if c, ok := readClaims(d); ok && oe.Error == "invalid_grant" {
		now := time.Now()
		if c.Exp > 0 && !now.Before(time.Unix(c.Exp, 0)) {
			why = append(why, fmt.Sprintf("the token expired at %s (%s ago): the kubelet renews a projected token well before it expires, so this file is not the projected one or is not being renewed: credential_source.file must name the file of the projected serviceAccountToken volume (%s: %s), not a copy",
				time.Unix(c.Exp, 0).UTC().Format(time.RFC3339), now.Sub(time.Unix(c.Exp, 0)).Round(time.Second), eksOverlay, eksTokenFile))
		}
		if want := "https:" + d.Audience; len(c.Aud) > 0 && !c.hasAudience(want) && strings.HasPrefix(d.Audience, "//") {
			why = append(why, fmt.Sprintf("the token's audience (aud) is %s, and the provider accepts %s unless other allowed audiences are configured on it: set the audience of the projected token (serviceAccountToken.audience of the %s volume in %s) to %s, or add %s to the provider's allowed audiences",
				strings.Join(c.Aud, ","), want, eksTokenVolume, eksOverlay, want, strings.Join(c.Aud, ",")))
		}
		if len(why) == 0 {
			why = append(why, fmt.Sprintf("check that the provider's issuer URI is the token's issuer (%s: the EKS cluster's OIDC issuer), and its attribute mapping and condition (subject %s)", c.Iss, c.Sub))
		}
	}
	if len(why) > 0 {
		msg += ": " + strings.Join(why, "; ")
	}
	return tokenErrorf(kind, err, "%s", msg)
}

// explainImpersonation explains IAM Credentials' refusal to issue the
// service account's token.
func explainImpersonation(d backfill.GoogleCredentials, kind backfill.Kind, code int, ge googleError, err error) *tokenError {
	msg := fmt.Sprintf("%s: IAM Credentials refused to issue an access token for service account %s (generateAccessToken: HTTP %d %s: %s)",
		summary(d), d.ServiceAccount, code, ge.Error.Status, ge.Error.Message)
	if code != 403 && ge.Error.Status != "PERMISSION_DENIED" {
		return tokenErrorf(kind, err, "%s", msg)
	}
	who := "the identity of the source credentials"
	role := "roles/iam.serviceAccountTokenCreator"
	if d.Type == typeExternalAccount {
		role = "roles/iam.workloadIdentityUser"
		who = "the workload identity pool's principals"
		if project, pool, _, ok := provider(d.Audience); ok {
			set := fmt.Sprintf("principalSet://iam.googleapis.com/projects/%s/locations/global/workloadIdentityPools/%s/*", project, pool)
			who = "the principals of workload identity pool " + pool + " (" + set
			if c, ok := readClaims(d); ok && c.Sub != "" {
				who += ", or only this pod's: principal://iam.googleapis.com/projects/" + project + "/locations/global/workloadIdentityPools/" + pool + "/subject/" + c.Sub
			}
			who += ")"
		}
	}
	return tokenErrorf(kind, err, "%s: the caller lacks iam.serviceAccounts.getAccessToken on it: grant %s %s on the service account (gcloud iam service-accounts add-iam-policy-binding %s --role=%s --member=…), or roles/iam.serviceAccountTokenCreator; and check that the service account exists",
		msg, who, role, d.ServiceAccount, role)
}

// claims are the non-secret claims of the subject token: what the
// messages name to say why STS refused it.
type claims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Exp int64    `json:"exp"`
}

// audience is a JWT aud claim: one string, or a list (Kubernetes).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*a = many
	return err
}

func (c claims) hasAudience(want string) bool {
	for _, a := range c.Aud {
		if a == want {
			return true
		}
	}
	return false
}

// readClaims decodes the claims of the JWT in the token file (a text
// file), without checking its signature; the token itself is never shown.
func readClaims(d backfill.GoogleCredentials) (claims, bool) {
	var c claims
	if d.TokenFile == "" {
		return c, false
	}
	b, err := os.ReadFile(d.TokenFile)
	if err != nil {
		return c, false
	}
	parts := strings.Split(strings.TrimSpace(string(b)), ".")
	if len(parts) != 3 {
		return c, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, false
	}
	return c, true
}
