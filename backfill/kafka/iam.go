package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// AWSMSKIAM is the SASL mechanism name for AWS MSK IAM authentication.
// librdkafka speaks it as SASL/OAUTHBEARER over TLS, the token being an
// AWS SigV4-presigned kafka-cluster:Connect request that this program
// makes and renews on librdkafka's token-refresh events.
const AWSMSKIAM = "AWS_MSK_IAM"

// tokenSource returns a SASL/OAUTHBEARER token and when it expires. The
// token is a secret: it must never be logged or put in an error.
type tokenSource func(ctx context.Context) (token string, expiresAt time.Time, err error)

// awsMSKIAMTokens returns a tokenSource that signs MSK IAM tokens for
// region with the default AWS credential chain: environment variables,
// EKS IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), shared config,
// then the instance or task role.
func awsMSKIAMTokens(region string) tokenSource {
	return func(ctx context.Context) (string, time.Time, error) {
		token, expiresMs, err := signer.GenerateAuthToken(ctx, region)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("signing an MSK IAM token for region %s: %w", region, err)
		}
		return token, time.UnixMilli(expiresMs), nil
	}
}

// tokenPrincipal is the principal name handed to librdkafka with each
// token. MSK derives the real principal (the IAM role) from the
// signature; librdkafka only wants a non-empty name.
const tokenPrincipal = "ordermin-backfill"

// tokenTimeout bounds one token request (credential look-up and signing).
const tokenTimeout = time.Minute

// iamConfig sets the librdkafka properties of AWS_MSK_IAM: SASL_SSL with
// OAUTHBEARER whose tokens this program supplies (no OIDC method).
//
// The settings' validation (config.Validate) is where a security protocol
// other than SASL_SSL or a missing region is refused, naming the setting;
// here either is a caller's bug, refused as an internal error rather than
// overridden or left to fail at the first token.
func (c Config) iamConfig(m ckafka.ConfigMap) error {
	if p := orDefault(c.SecurityProtocol, "SASL_SSL"); p != "SASL_SSL" || c.tokens == nil && c.AWSRegion == "" {
		return backfill.Errorf(backfill.KindInternal, "internal error: SASL mechanism %s with security protocol %s and AWS region %q: the settings' validation lets neither anything but SASL_SSL nor an empty region through", AWSMSKIAM, p, c.AWSRegion)
	}
	m["security.protocol"] = "SASL_SSL"
	m["sasl.mechanisms"] = "OAUTHBEARER"
	return nil
}

// tokenProvider returns the provider for AWS_MSK_IAM, or nil for any
// other mechanism.
func (c Config) tokenProvider() tokenSource {
	if c.SASLMechanism != AWSMSKIAM {
		return nil
	}
	if c.tokens != nil {
		return c.tokens
	}
	return awsMSKIAMTokens(c.AWSRegion)
}

// tokenSetter is the part of the librdkafka client that takes tokens.
type tokenSetter interface {
	SetOAuthBearerToken(ckafka.OAuthBearerToken) error
	SetOAuthBearerTokenFailure(reason string) error
}

// answerTokenRefresh answers one librdkafka token-refresh event: it asks
// provide for a token and hands it to set, or reports the failure, which
// makes librdkafka ask again 10 seconds later. Neither the log nor the
// failure reason contains the token.
func answerTokenRefresh(ctx context.Context, provide tokenSource, set tokenSetter, log *slog.Logger) {
	token, expires, err := provide(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return // the producer is closing
	}
	switch {
	case err != nil:
		err = fmt.Errorf("getting a SASL/OAUTHBEARER token: %w", err)
	case token == "":
		err = errors.New("the token provider returned an empty SASL/OAUTHBEARER token")
	default:
		err = set.SetOAuthBearerToken(ckafka.OAuthBearerToken{TokenValue: token, Expiration: expires, Principal: tokenPrincipal})
		if err == nil {
			log.Info("kafka SASL/OAUTHBEARER token refreshed", "expires", expires.UTC().Format(time.RFC3339))
			return
		}
		if errors.Is(err, errTokenRefresherStopped) {
			return
		}
		err = fmt.Errorf("librdkafka refused the SASL/OAUTHBEARER token (expiring %s): %w", expires.UTC().Format(time.RFC3339), err)
	}
	reason := httpc.Redact(err.Error(), token)
	log.Error("kafka SASL/OAUTHBEARER token refresh failed; librdkafka asks again in 10s", "error", reason)
	if ferr := set.SetOAuthBearerTokenFailure(reason); ferr != nil {
		log.Warn("reporting the token failure to librdkafka", "error", ferr.Error())
	}
}

// tokenRefresher answers librdkafka's token-refresh events on its own
// goroutine, so that a slow credential look-up does not hold up delivery
// reports. It never hands librdkafka a token once stopped, because the
// client may be being destroyed.
type tokenRefresher struct {
	provide tokenSource
	client  tokenSetter
	log     *slog.Logger
	wake    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex // held while calling client
	stopped bool
}

func startTokenRefresher(provide tokenSource, client tokenSetter, log *slog.Logger) *tokenRefresher {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tokenRefresher{provide: provide, client: client, log: log, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go t.run()
	return t
}

func (t *tokenRefresher) run() {
	defer close(t.done)
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
			ctx, cancel := context.WithTimeout(t.ctx, tokenTimeout)
			answerTokenRefresh(ctx, t.provide, t, t.log)
			cancel()
		}
	}
}

// refresh asks for a new token; requests made while one is being fetched
// are answered by the next fetch.
func (t *tokenRefresher) refresh() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// stop ends the refresher; after it returns no token is handed to the client.
func (t *tokenRefresher) stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.cancel()
	<-t.done
}

var errTokenRefresherStopped = errors.New("the producer is closing")

func (t *tokenRefresher) SetOAuthBearerToken(tok ckafka.OAuthBearerToken) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return errTokenRefresherStopped
	}
	return t.client.SetOAuthBearerToken(tok)
}

func (t *tokenRefresher) SetOAuthBearerTokenFailure(reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return errTokenRefresherStopped
	}
	return t.client.SetOAuthBearerTokenFailure(reason)
}

// tokenRefreshEvent answers librdkafka's OAuthBearerTokenRefresh event.
func (p *Producer) tokenRefreshEvent() {
	if p.tokens == nil {
		// OAUTHBEARER set through kafka.properties: nothing here makes tokens.
		if err := p.p.SetOAuthBearerTokenFailure("no SASL/OAUTHBEARER token provider: use kafka.sasl_mechanism=" + AWSMSKIAM); err != nil {
			p.log.Warn("reporting the token failure to librdkafka", "error", err.Error())
		}
		return
	}
	p.tokens.refresh()
}
