package kafka

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
)

const iamToken = "aWFtLXRva2VuLXNlY3JldC12YWx1ZQ" // a secret: must never be logged

// fakeTokenClient records what answerTokenRefresh hands to librdkafka.
type fakeTokenClient struct {
	mu       sync.Mutex
	tokens   []ckafka.OAuthBearerToken
	failures []string
	setErr   error
}

func (f *fakeTokenClient) SetOAuthBearerToken(tok ckafka.OAuthBearerToken) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.setErr != nil {
		return f.setErr
	}
	f.tokens = append(f.tokens, tok)
	return nil
}

func (f *fakeTokenClient) SetOAuthBearerTokenFailure(reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, reason)
	return nil
}

func TestTokenRefreshHandsTheTokenAndItsExpiry(t *testing.T) {
	expires := time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC)
	var gotCtx bool
	provide := func(ctx context.Context) (string, time.Time, error) {
		gotCtx = ctx != nil
		return iamToken, expires, nil
	}
	var client fakeTokenClient
	var logs logBuffer
	answerTokenRefresh(context.Background(), provide, &client, logs.logger())
	if !gotCtx || len(client.tokens) != 1 || len(client.failures) != 0 {
		t.Fatalf("tokens %v, failures %v: want one token and no failure", client.tokens, client.failures)
	}
	tok := client.tokens[0]
	if tok.TokenValue != iamToken || !tok.Expiration.Equal(expires) || tok.Principal == "" || len(tok.Extensions) != 0 {
		t.Fatalf("token handed to librdkafka = %+v, want value %q expiring %s with a principal", tok, iamToken, expires)
	}
	if !strings.Contains(logs.String(), "token refreshed") || !strings.Contains(logs.String(), "2030-01-02T03:04:05Z") {
		t.Fatalf("the refresh and its expiry are not logged: %s", logs.String())
	}
	noSecret(t, "the log", logs.String(), iamToken)
}

func TestTokenRefreshFailures(t *testing.T) {
	expires := time.Now().Add(15 * time.Minute)
	for _, tc := range []struct {
		name    string
		provide tokenSource
		setErr  error
		reason  string // the failure reason must say this
	}{
		{"provider error", func(context.Context) (string, time.Time, error) {
			return "", time.Time{}, errors.New("failed to load credentials: no EC2 IMDS role found")
		}, nil, "no EC2 IMDS role found"},
		{"provider error quoting its token", func(context.Context) (string, time.Time, error) {
			return iamToken, expires, errors.New("signing " + iamToken + " failed")
		}, nil, "signing [redacted] failed"},
		{"empty token", func(context.Context) (string, time.Time, error) {
			return "", expires, nil
		}, nil, "empty"},
		{"librdkafka refuses the token", func(context.Context) (string, time.Time, error) {
			return iamToken, expires, nil
		}, errors.New("Invalid token: must be unexpired"), "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fakeTokenClient{setErr: tc.setErr}
			var logs logBuffer
			answerTokenRefresh(context.Background(), tc.provide, &client, logs.logger())
			if len(client.tokens) != 0 || len(client.failures) != 1 {
				t.Fatalf("tokens %v, failures %q: want the failure path", client.tokens, client.failures)
			}
			if !strings.Contains(client.failures[0], tc.reason) {
				t.Fatalf("failure reason %q does not say %q", client.failures[0], tc.reason)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), tc.reason) {
				t.Fatalf("the failure is not logged as an error with its reason: %s", logs.String())
			}
			noSecret(t, "the failure reason", client.failures[0], iamToken)
			noSecret(t, "the log", logs.String(), iamToken)
		})
	}
}

func TestIAMConfigMap(t *testing.T) {
	cfg := testConfig([]string{"b-1.msk.example:9098"})
	cfg.SASLMechanism, cfg.AWSRegion = AWSMSKIAM, "eu-west-1"
	m, err := cfg.producerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if m["security.protocol"] != "SASL_SSL" || m["sasl.mechanisms"] != "OAUTHBEARER" {
		t.Fatalf("security.protocol=%v sasl.mechanisms=%v, want SASL_SSL and OAUTHBEARER", m["security.protocol"], m["sasl.mechanisms"])
	}
	for _, k := range []string{"sasl.oauthbearer.method", "sasl.username", "sasl.password", "enable.sasl.oauthbearer.unsecure.jwt"} {
		if v, ok := m[k]; ok {
			t.Errorf("%s=%v is set; the program supplies the tokens", k, v)
		}
	}
	cfg.SecurityProtocol = "SASL_SSL"
	if _, err := cfg.producerConfig(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Config{
		func() Config { c := cfg; c.SecurityProtocol = "SASL_PLAINTEXT"; return c }(),
		func() Config { c := cfg; c.AWSRegion = ""; return c }(),
		func() Config {
			c := cfg
			c.Properties = map[string]string{"security.protocol": "SASL_PLAINTEXT"}
			return c
		}(),
		func() Config { c := cfg; c.Properties = map[string]string{"sasl.mechanisms": "PLAIN"}; return c }(),
	} {
		// config.Validate refuses each, naming the setting; reaching the
		// adapter is a bug.
		if p, err := New(bad, nil); err == nil || backfill.KindOf(err) != backfill.KindInternal {
			if p != nil {
				p.Close()
			}
			t.Errorf("New(%s, region %q, properties %v) = %v, want an internal error", bad.SecurityProtocol, bad.AWSRegion, bad.Properties, err)
		}
	}
}

// tokenCalls is a fake provider that counts its calls.
type tokenCalls struct {
	mu      sync.Mutex
	n       int
	expires time.Time
	err     error
	called  chan struct{}
}

func newTokenCalls(expires time.Time, err error) *tokenCalls {
	return &tokenCalls{expires: expires, err: err, called: make(chan struct{}, 100)}
}

func (c *tokenCalls) provide(ctx context.Context) (string, time.Time, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	c.called <- struct{}{}
	if c.err != nil {
		return "", time.Time{}, c.err
	}
	return iamToken, c.expires, nil
}

// await waits for the next call of the provider.
func (c *tokenCalls) await(t *testing.T) {
	t.Helper()
	select {
	case <-c.called:
	case <-time.After(time.Minute):
		t.Fatal("librdkafka never asked for a token")
	}
}

// awaitLog waits for the log to contain s.
func awaitLog(t *testing.T, logs *logBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q: %s", s, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// librdkafka asks for a token as soon as the client starts; the producer
// answers from its events loop and the real librdkafka takes the token.
func TestIAMProducerAnswersLibrdkafkaTokenRefresh(t *testing.T) {
	calls := newTokenCalls(time.Now().Add(15*time.Minute), nil)
	cfg := testConfig([]string{unreachable})
	cfg.SASLMechanism, cfg.tokens = AWSMSKIAM, calls.provide
	var logs logBuffer
	p, err := New(cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	calls.await(t)
	awaitLog(t, &logs, "kafka SASL/OAUTHBEARER token refreshed")
	p.Close()
	if strings.Contains(logs.String(), "token refresh failed") {
		t.Fatalf("librdkafka refused the token: %s", logs.String())
	}
	noSecret(t, "the log", logs.String(), iamToken)
}

// A token that has already expired is refused by librdkafka itself: the
// expiry reaches it, and the refusal takes the failure path.
func TestIAMProducerPassesTheExpiryToLibrdkafka(t *testing.T) {
	calls := newTokenCalls(time.Now().Add(-time.Minute), nil)
	cfg := testConfig([]string{unreachable})
	cfg.SASLMechanism, cfg.tokens = AWSMSKIAM, calls.provide
	var logs logBuffer
	p, err := New(cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	awaitLog(t, &logs, "librdkafka refused the SASL/OAUTHBEARER token")
	noSecret(t, "the log", logs.String(), iamToken)
}

// Closing the producer while the provider is still working neither hangs
// nor hands librdkafka a token after the client is gone.
func TestIAMProducerClosesDuringATokenRequest(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	cfg := testConfig([]string{unreachable})
	cfg.SASLMechanism = AWSMSKIAM
	cfg.tokens = func(ctx context.Context) (string, time.Time, error) {
		once.Do(func() { close(started) })
		select {
		case <-ctx.Done():
			return "", time.Time{}, ctx.Err()
		case <-release:
			return iamToken, time.Now().Add(time.Hour), nil
		}
	}
	var logs logBuffer
	p, err := New(cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("librdkafka never asked for a token")
	}
	p.Close()
	close(release)
	if strings.Contains(logs.String(), "token refresh failed") || strings.Contains(logs.String(), "token refreshed") {
		t.Fatalf("a token was handled after Close: %s", logs.String())
	}
}

// The default provider signs an MSK IAM token with the default AWS
// credential chain (here: static keys from the environment, no network).
func TestAWSMSKIAMTokensSignsAConnectRequest(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	before := time.Now()
	token, expires, err := awsMSKIAMTokens("eu-west-1")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("the token is not base64url: %v", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "kafka.eu-west-1.amazonaws.com" || q.Get("Action") != "kafka-cluster:Connect" || q.Get("X-Amz-Signature") == "" ||
		!strings.HasPrefix(q.Get("X-Amz-Credential"), "AKIAIOSFODNN7EXAMPLE/") {
		t.Fatalf("the token is not a signed kafka-cluster:Connect request for eu-west-1: %s", raw)
	}
	if strings.Contains(string(raw), "wJalrXUtnFEMI") {
		t.Fatal("the token contains the secret access key")
	}
	if expires.Before(before) || expires.After(before.Add(time.Hour)) {
		t.Fatalf("expiry %s is not a few minutes ahead of %s", expires, before)
	}
}
