package kafka_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
)

// awsEnv points the AWS default credential chain at files in a temporary
// directory and turns off the instance metadata service, so that no
// network is asked; with keys it signs tokens offline.
func awsEnv(t *testing.T, keyID, secret string) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_ROLE_ARN", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// With no AWS credentials the token provider fails; librdkafka is told so,
// and start-up fails with an authentication error naming the IAM setup and
// the provider's reason. kfake does not speak OAUTHBEARER, so with
// credentials the SASL handshake fails and is reported the same way: that
// is checked after.
func TestIAMProducerProviderFailure(t *testing.T) {
	serverTLS, caFile := tlsFiles(t)
	c := authCluster(t, kfake.TLS(serverTLS), kfake.EnableSASL())
	awsEnv(t, "", "")
	cfg := testConfig(c.ListenAddrs())
	cfg.SecurityProtocol, cfg.SASLMechanism, cfg.AWSRegion, cfg.TLSCAFile = "SASL_SSL", kafka.AWSMSKIAM, "eu-west-1", caFile
	cfg.ConnectTimeout = 3 * time.Second
	var logs logBuffer
	err := partitionsError(t, cfg, logs.logger())
	t.Log(err)
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "MSK IAM authentication") || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("want a config error about MSK IAM authentication with the provider's reason, got %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "credentials") {
		t.Fatalf("the provider's error is not logged: %s", logs.String())
	}

	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	awsEnv(t, "AKIAIOSFODNN7EXAMPLE", secret)
	logs = logBuffer{}
	err = partitionsError(t, cfg, logs.logger())
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "MSK IAM authentication") {
		t.Fatalf("want a config error about MSK IAM authentication, got %v", err)
	}
	noSecret(t, "the error", err.Error(), secret, "X-Amz-Signature")
	noSecret(t, "the log", logs.String(), secret, "X-Amz-Signature")
}
