// Package gauthfake is an in-process double of the two Google endpoints
// that a workload identity federation credential configuration
// (type external_account, as `gcloud iam workload-identity-pools
// create-cred-config` writes it) makes the Google auth library call, and of
// the issuer of the token it exchanges:
//
//   - the Security Token Service's token exchange, POST /v1/token
//     (https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token):
//     an OAuth 2.0 token exchange (RFC 8693) of the subject token, a JWT,
//     for a federated access token, answered
//     {access_token, issued_token_type, token_type, expires_in}, or refused
//     with HTTP 400 and an OAuth 2.0 error {error, error_description}
//     (invalid_grant for a token that is expired, not signed by the
//     provider's issuer, or for another audience; invalid_target for an
//     audience naming no provider);
//   - IAM Service Account Credentials' generateAccessToken,
//     POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken
//     (https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken),
//     called with the federated token as bearer and answered
//     {accessToken, expireTime}, or refused with HTTP 403 PERMISSION_DENIED
//     "Permission 'iam.serviceAccounts.getAccessToken' denied on resource
//     (or it may not exist)." when the principal lacks
//     roles/iam.workloadIdentityUser (or roles/iam.serviceAccountTokenCreator)
//     on the service account;
//   - an OIDC issuer (the EKS cluster's) that signs the projected service
//     account tokens the Kubernetes overlay mounts: Mint.
//
// The requests are those cloud.google.com/go/auth sends, read at
// v0.24.1-0.20261001053825-dbc26066f70a (go.mod):
// credentials/internal/stsexchange/sts_exchange.go (ExchangeToken: a form
// with grant_type, audience, scope, requested_token_type, subject_token,
// subject_token_type), credentials/internal/externalaccount/file_provider.go
// (the subject token is credential_source.file's content, read at every
// exchange) and credentials/internal/impersonate/impersonate.go
// (generateAccessToken with {lifetime, scope}; an answer other than 2xx
// becomes "credentials: status code N: body").
//
// Unlike Google, the double can shorten the lifetimes it grants (ExpiresIn,
// Lifetime), so that a test sees the library refresh its tokens. The
// error_description texts are the double's own; the job reads only the
// error code and the HTTP status, and shows the description as given.
//
// The double also checks the calls that carry the final access token:
// RequireToken wraps a REST double, UnaryInterceptor and StreamInterceptor
// a gRPC one; each call is recorded with the token it carried.
package gauthfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Token types of RFC 8693 and the STS API.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
)

// Server is a running double of STS and IAM Credentials, served over TLS.
// Set its fields before the first request; Deny and Refuse may change
// while it serves (under the lock the methods take).
type Server struct {
	// Audience is the workload identity provider's resource name, as a
	// credential configuration's audience names it:
	// //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.
	Audience string
	// ServiceAccount is the only service account generateAccessToken
	// serves.
	ServiceAccount string
	// ExpiresIn is the federated token's lifetime, in seconds (expires_in).
	ExpiresIn int
	// Lifetime caps the service account token's lifetime (Google grants
	// the lifetime asked for, 1 h by default).
	Lifetime time.Duration

	issuer *Issuer
	srv    *httptest.Server

	mu             sync.Mutex
	deny           bool
	delay          time.Duration
	exchanges      []Exchange
	impersonations []Impersonation
	calls          []Call
	federated      map[string]issued // STS access token -> what it was issued for
	access         map[string]issued // generateAccessToken's tokens
	next           int
}

type issued struct {
	subject string // the subject token exchanged (federated), or the federated token (access)
	expiry  time.Time
}

// Exchange is one STS token request, as the double saw it.
type Exchange struct {
	SubjectToken string
	Audience     string
	Scope        string
	AccessToken  string // issued; empty when refused
	Error        string // the OAuth error code of a refusal
}

// Impersonation is one generateAccessToken request.
type Impersonation struct {
	ServiceAccount string
	Bearer         string // the federated token presented
	Scope          []string
	AccessToken    string // issued; empty when refused
}

// Call is one call to a BigQuery double, with the token it carried.
type Call struct {
	API    string // "rest" or "grpc"
	Method string // "GET /bigquery/v2/…" or the gRPC method
	Token  string // the bearer token, "" without one
	Valid  bool   // the token was one generateAccessToken issued, unexpired
}

// Start serves the double over TLS with ca's certificate. The issuer
// signs the tokens the double accepts.
func Start(ca *CA, issuer *Issuer, audience, serviceAccount string) *Server {
	s := &Server{
		Audience: audience, ServiceAccount: serviceAccount, ExpiresIn: 3600, Lifetime: time.Hour,
		issuer: issuer, federated: map[string]issued{}, access: map[string]issued{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/token", s.token)
	mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/{name}", s.generateAccessToken)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.TLS = ca.ServerConfig()
	s.srv.StartTLS()
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// TokenURL is the STS token endpoint, for a credential configuration's
// token_url.
func (s *Server) TokenURL() string { return s.srv.URL + "/v1/token" }

// ImpersonationURL is generateAccessToken's URL for the service account,
// for service_account_impersonation_url.
func (s *Server) ImpersonationURL() string {
	return s.srv.URL + "/v1/projects/-/serviceAccounts/" + s.ServiceAccount + ":generateAccessToken"
}

// DefaultAllowedAudience is the audience a provider accepts in the
// tokens it exchanges when none is configured on it: its resource name
// as an https URL.
func (s *Server) DefaultAllowedAudience() string { return "https:" + s.Audience }

// CredentialConfig is a credential configuration for the double, as
// `gcloud iam workload-identity-pools create-cred-config
// --credential-source-file=tokenFile [--service-account=…]` writes it;
// impersonate adds service_account_impersonation_url.
func (s *Server) CredentialConfig(tokenFile string, impersonate bool) []byte {
	c := map[string]any{
		"universe_domain":    "googleapis.com",
		"type":               "external_account",
		"audience":           s.Audience,
		"subject_token_type": tokenTypeJWT,
		"token_url":          s.TokenURL(),
		"credential_source":  map[string]any{"file": tokenFile, "format": map[string]string{"type": "text"}},
	}
	if impersonate {
		c["service_account_impersonation_url"] = s.ImpersonationURL()
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// SetDeny makes generateAccessToken refuse (403) or serve.
func (s *Server) SetDeny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// SetDelay holds each STS answer for d (or until the caller gives up),
// as an endpoint that does not answer.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Exchanges returns the STS requests so far, in order.
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exchange(nil), s.exchanges...)
}

// Impersonations returns the generateAccessToken requests so far.
func (s *Server) Impersonations() []Impersonation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Impersonation(nil), s.impersonations...)
}

// Calls returns the calls RequireToken and the interceptors saw.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// SubjectOf returns the subject token from which the service account
// token access descends: the token file's content that STS exchanged for
// the federated token that generateAccessToken exchanged for access.
func (s *Server) SubjectOf(access string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[access]
	if !ok {
		return "", false
	}
	f, ok := s.federated[a.subject]
	return f.subject, ok
}

// token is STS's token exchange.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", err.Error())
		return
	}
	f := r.PostForm
	ex := Exchange{SubjectToken: f.Get("subject_token"), Audience: f.Get("audience"), Scope: f.Get("scope")}
	refuse := func(code, desc string) {
		ex.Error = code
		s.record(func() { s.exchanges = append(s.exchanges, ex) })
		oauthError(w, code, desc)
	}
	switch {
	case f.Get("grant_type") != grantTokenExchange:
		refuse("unsupported_grant_type", fmt.Sprintf("Unsupported grant type %q.", f.Get("grant_type")))
		return
	case f.Get("requested_token_type") != tokenTypeAccess:
		refuse("invalid_request", fmt.Sprintf("Invalid value for \"requested_token_type\": %q.", f.Get("requested_token_type")))
		return
	case f.Get("subject_token_type") != tokenTypeJWT && f.Get("subject_token_type") != tokenTypeIDToken:
		refuse("invalid_request", fmt.Sprintf("Invalid value for \"subject_token_type\": %q.", f.Get("subject_token_type")))
		return
	case ex.Audience != s.Audience:
		refuse("invalid_target", fmt.Sprintf("The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist: %s.", ex.Audience))
		return
	case ex.SubjectToken == "":
		refuse("invalid_request", "Invalid value for \"subject_token\": empty.")
		return
	}
	claims, err := s.issuer.verify(ex.SubjectToken)
	if err != nil {
		refuse("invalid_grant", "Invalid ID Token: "+err.Error())
		return
	}
	now := time.Now()
	if exp := time.Unix(claims.Exp, 0); !now.Before(exp) {
		refuse("invalid_grant", fmt.Sprintf("The ID Token expired at %s.", exp.UTC().Format(time.RFC3339)))
		return
	}
	if !claims.hasAudience(s.DefaultAllowedAudience()) {
		refuse("invalid_grant", fmt.Sprintf("The audience in ID Token %v does not match the expected audience %s.", claims.Aud, s.DefaultAllowedAudience()))
		return
	}
	s.mu.Lock()
	s.next++
	ex.AccessToken = fmt.Sprintf("ya29.federated-%d", s.next)
	s.federated[ex.AccessToken] = issued{subject: ex.SubjectToken, expiry: now.Add(time.Duration(s.ExpiresIn) * time.Second)}
	s.exchanges = append(s.exchanges, ex)
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]any{
		"access_token": ex.AccessToken, "issued_token_type": tokenTypeAccess, "token_type": "Bearer", "expires_in": s.ExpiresIn,
	})
}

// generateAccessToken is IAM Credentials' method.
func (s *Server) generateAccessToken(w http.ResponseWriter, r *http.Request) {
	email, ok := strings.CutSuffix(r.PathValue("name"), ":generateAccessToken")
	if !ok {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "Method not found.", "")
		return
	}
	var body struct {
		Scope    []string `json:"scope"`
		Lifetime string   `json:"lifetime"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Scope) == 0 {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid request: scope is required (%v).", err), "")
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	imp := Impersonation{ServiceAccount: email, Bearer: bearer, Scope: body.Scope}
	s.mu.Lock()
	defer s.mu.Unlock()
	fed, known := s.federated[bearer]
	now := time.Now()
	switch {
	case !known || !now.Before(fed.expiry):
		s.impersonations = append(s.impersonations, imp)
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "")
		return
	case s.deny || email != s.ServiceAccount:
		// Google answers the same for a service account that does not
		// exist, so as not to tell.
		s.impersonations = append(s.impersonations, imp)
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).", "IAM_PERMISSION_DENIED")
		return
	}
	lifetime := time.Hour
	if d, err := time.ParseDuration(body.Lifetime); err == nil && d > 0 {
		lifetime = d
	}
	lifetime = min(lifetime, s.Lifetime)
	s.next++
	imp.AccessToken = fmt.Sprintf("ya29.sa-%d", s.next)
	expiry := now.Add(lifetime)
	s.access[imp.AccessToken] = issued{subject: bearer, expiry: expiry}
	s.impersonations = append(s.impersonations, imp)
	reply(w, http.StatusOK, map[string]string{"accessToken": imp.AccessToken, "expireTime": expiry.UTC().Format(time.RFC3339)})
}

// Valid reports whether an Authorization header's value carries a service
// account token the double issued and that has not expired.
func (s *Server) Valid(authorization string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valid(authorization)
}

func (s *Server) valid(authorization string) bool {
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return false
	}
	a, ok := s.access[tok]
	return ok && time.Now().Before(a.expiry)
}

// check records a call and reports whether its token is valid.
func (s *Server) check(api, method, authorization string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.valid(authorization)
	tok, _ := strings.CutPrefix(authorization, "Bearer ")
	s.calls = append(s.calls, Call{API: api, Method: method, Token: tok, Valid: ok})
	return ok
}

// RequireToken serves h only to requests that carry a valid token, and
// answers others 401 as Google's APIs do.
func (s *Server) RequireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.check("rest", r.Method+" "+r.URL.Path, r.Header.Get("Authorization")) {
			googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is an OAuth 2.0 error response (RFC 6749 5.2), as STS
// answers a refused exchange.
func oauthError(w http.ResponseWriter, code, desc string) {
	reply(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

// googleError is a Google API error (google.rpc.Status in JSON), with an
// ErrorInfo reason when given.
func googleError(w http.ResponseWriter, code int, status, msg, reason string) {
	e := map[string]any{"code": code, "message": msg, "status": status}
	if reason != "" {
		e["details"] = []map[string]any{{
			"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "iam.googleapis.com",
			"metadata": map[string]string{"permission": "iam.serviceAccounts.getAccessToken"},
		}}
	}
	reply(w, code, map[string]any{"error": e})
}

// Issuer is an OIDC issuer signing tokens with RS256, as the EKS cluster's
// issuer signs the projected service account tokens.
type Issuer struct {
	URL string
	key *rsa.PrivateKey
}

// NewIssuer makes an issuer named url.
func NewIssuer(url string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &Issuer{URL: url, key: key}, nil
}

type claims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Exp int64    `json:"exp"`
	Iat int64    `json:"iat"`
}

// audience is a JWT aud claim: one string or, in Kubernetes' tokens, a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
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

// Mint returns a token for subject sub with audience aud (a list, as
// Kubernetes writes it) expiring at exp.
func (i *Issuer) Mint(sub, aud string, exp time.Time) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "gauthfake"})
	body, _ := json.Marshal(map[string]any{
		"iss": i.URL, "sub": sub, "aud": []string{aud}, "exp": exp.Unix(), "iat": time.Now().Unix(), "nbf": time.Now().Unix(),
	})
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return signed + "." + enc.EncodeToString(sig)
}

// verify checks a token's signature and issuer and returns its claims.
func (i *Issuer) verify(tok string) (claims, error) {
	var c claims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("not a JWT (%d parts)", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, fmt.Errorf("signature: %v", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&i.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return c, fmt.Errorf("the signature does not verify with the keys of issuer %s", i.URL)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, err
	}
	if c.Iss != i.URL {
		return c, fmt.Errorf("issuer %q is not the provider's %q", c.Iss, i.URL)
	}
	return c, nil
}
