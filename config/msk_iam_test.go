package config

import (
	"io"
	"strings"
	"testing"
)

func TestMSKIAMSettings(t *testing.T) {
	t.Parallel()
	iam := append([]string{"--kafka-security-protocol=SASL_SSL", "--kafka-sasl-mechanism=AWS_MSK_IAM"}, required...)

	c, err := Load(append([]string{"--kafka-aws-region=eu-west-1"}, iam...), env(nil), io.Discard)
	if err != nil {
		t.Fatalf("AWS_MSK_IAM without a username or password: %v", err)
	}
	if c.Kafka.AWSRegion != "eu-west-1" || c.Kafka.SASLMechanism != "AWS_MSK_IAM" {
		t.Fatalf("kafka = %+v", c.Kafka)
	}

	// AWS_REGION (set by EKS) is the default; BACKFILL_KAFKA_AWS_REGION wins over it.
	c, err = Load(iam, env(map[string]string{"AWS_REGION": "us-east-2"}), io.Discard)
	if err != nil || c.Kafka.AWSRegion != "us-east-2" {
		t.Fatalf("region from AWS_REGION = %q, %v", c.Kafka.AWSRegion, err)
	}
	c, err = Load(iam, env(map[string]string{"AWS_REGION": "us-east-2", "BACKFILL_KAFKA_AWS_REGION": "eu-central-1"}), io.Discard)
	if err != nil || c.Kafka.AWSRegion != "eu-central-1" {
		t.Fatalf("region from BACKFILL_KAFKA_AWS_REGION = %q, %v", c.Kafka.AWSRegion, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{iam, "kafka.aws_region"},
		{append(iam[:len(iam):len(iam)], "--kafka-aws-region=eu-west-1", "--kafka-security-protocol=SASL_PLAINTEXT"), "needs SASL_SSL"},
		{append(iam[:len(iam):len(iam)], "--kafka-aws-region=eu-west-1", "--kafka-security-protocol=SSL"), "needs SASL_SSL"},
		{append([]string{"--kafka-security-protocol=SASL_SSL", "--kafka-sasl-mechanism=AWS_IAM"}, required...), "AWS_MSK_IAM"},
		// kafka.properties would otherwise replace what IAM needs, and send
		// the token in the clear or under another mechanism.
		{append(iam[:len(iam):len(iam)], "--kafka-aws-region=eu-west-1", "--kafka-properties=security.protocol=SASL_PLAINTEXT"), "kafka.properties"},
		{append(iam[:len(iam):len(iam)], "--kafka-aws-region=eu-west-1", "--kafka-properties=sasl.mechanisms=PLAIN"), "kafka.properties"},
		{append(iam[:len(iam):len(iam)], "--kafka-aws-region=eu-west-1", "--kafka-properties=sasl.oauthbearer.method=oidc"), "kafka.properties"},
	} {
		if _, err := Load(tc.args, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v; want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}
