package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
)

// The authentication tests drive the real librdkafka producer against
// kfake with SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS listeners.

const (
	saslUser     = "backfill"
	saslPassword = "pa55-w0rd-never-logged"
)

// topicRecords is how many records the cluster holds for the topic.
func topicRecords(c *kfake.Cluster) int64 {
	var n int64
	for _, p := range c.PartitionInfos(topic) {
		n += p.HighWatermark - p.LogStartOffset
	}
	return n
}

// produceAll checks the topic's partitions, produces n records and
// checks that every one was acknowledged and stored.
func produceAll(t *testing.T, c *kfake.Cluster, cfg kafka.Config, log *slog.Logger, n int) {
	t.Helper()
	p, err := kafka.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if got, err := p.Partitions(ctx); err != nil || got != 3 {
		t.Fatalf("Partitions = %d, %v; want 3", got, err)
	}
	for i := range n {
		if err := p.Produce(ctx, []byte{0, 0, 0, 0, 1, byte(i * 2)}, []byte(fmt.Sprintf("v%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := p.Deliveries(); d.Produced != int64(n) || d.Acked != int64(n) || d.Failed != 0 {
		t.Fatalf("deliveries = %+v, want %d produced and acked", d, n)
	}
	if got := topicRecords(c); got != int64(n) {
		t.Fatalf("the topic holds %d records, want %d", got, n)
	}
}

func saslConfig(brokers []string, protocol, mechanism, password string) kafka.Config {
	cfg := testConfig(brokers)
	cfg.SecurityProtocol, cfg.SASLMechanism, cfg.SASLUsername, cfg.SASLPassword = protocol, mechanism, saslUser, password
	return cfg
}

func TestSASLProducesWithTheRightPassword(t *testing.T) {
	for _, mech := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			c := authCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, saslUser, saslPassword))
			var logs logBuffer
			produceAll(t, c, saslConfig(c.ListenAddrs(), "SASL_PLAINTEXT", mech, saslPassword), logs.logger(), 200)
			noSecret(t, "the producer's log", logs.String(), saslPassword)
		})
	}
}

// kfake closes the connection on a bad SCRAM proof where Kafka answers
// SASL_AUTHENTICATION_FAILED, so librdkafka sees a transport failure in the
// middle of the SASL exchange: that is reported with its SASL reason.
func TestSASLWrongPasswordDroppedConnectionIsExplained(t *testing.T) {
	c := authCluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", saslUser, saslPassword))
	cfg := saslConfig(c.ListenAddrs(), "SASL_PLAINTEXT", "SCRAM-SHA-512", "wrong-"+saslPassword)
	cfg.ConnectTimeout = 3 * time.Second
	var logs logBuffer
	err := partitionsError(t, cfg, logs.logger())
	if k := backfill.KindOf(err); k != backfill.KindUnavailable && k != backfill.KindConfig {
		t.Fatalf("kind %v, want unavailable or config: %v", k, err)
	}
	if !strings.Contains(err.Error(), "SASL authentication") {
		t.Fatalf("the error does not say SASL authentication failed: %v", err)
	}
	noSecret(t, "the error", err.Error(), saslPassword)
	noSecret(t, "the producer's log", logs.String(), saslPassword)
}

// rejectLikeKafka makes kfake answer a SaslAuthenticate request the way a
// Kafka broker answers bad credentials: error SASL_AUTHENTICATION_FAILED.
// For PLAIN it checks the password itself; for SCRAM it rejects the
// client's final message (the proof), which kfake cannot check for it.
func rejectLikeKafka(c *kfake.Cluster, mechanism string) {
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.SASLAuthenticateRequest)
		switch mechanism {
		case "PLAIN":
			parts := bytes.Split(req.SASLAuthBytes, []byte{0})
			if len(parts) == 3 && string(parts[1]) == saslUser && string(parts[2]) == saslPassword {
				return nil, nil, false
			}
		default:
			if !bytes.HasPrefix(req.SASLAuthBytes, []byte("c=")) {
				return nil, nil, false
			}
		}
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
}

func TestSASLRejectedCredentialsAreAConfigError(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := authCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, saslUser, saslPassword))
			rejectLikeKafka(c, mech)
			cfg := saslConfig(c.ListenAddrs(), "SASL_PLAINTEXT", mech, "wrong-"+saslPassword)
			cfg.ConnectTimeout = 5 * time.Second
			var logs logBuffer
			err := partitionsError(t, cfg, logs.logger())
			if backfill.KindOf(err) != backfill.KindConfig {
				t.Fatalf("want a config error, got %v", err)
			}
			if !strings.Contains(err.Error(), "SASL authentication failed: check kafka.sasl_username/password") {
				t.Fatalf("the error does not point at the credentials: %v", err)
			}
			noSecret(t, "the error", err.Error(), saslPassword)
			noSecret(t, "the producer's log", logs.String(), saslPassword)
		})
	}
	t.Run("PLAIN right password", func(t *testing.T) {
		// The Kafka-like check lets the right password through.
		c := authCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", saslUser, saslPassword))
		rejectLikeKafka(c, "PLAIN")
		produceAll(t, c, saslConfig(c.ListenAddrs(), "SASL_PLAINTEXT", "PLAIN", saslPassword), nil, 20)
	})
}

func TestTLSWithTheCAFile(t *testing.T) {
	serverTLS, caFile := tlsFiles(t)
	c := authCluster(t, kfake.TLS(serverTLS))
	cfg := testConfig(c.ListenAddrs())
	cfg.SecurityProtocol, cfg.TLSCAFile = "SSL", caFile
	produceAll(t, c, cfg, nil, 200)
}

func TestTLSWithoutTheCAFails(t *testing.T) {
	serverTLS, _ := tlsFiles(t)
	c := authCluster(t, kfake.TLS(serverTLS))
	cfg := testConfig(c.ListenAddrs())
	cfg.SecurityProtocol = "SSL"
	cfg.ConnectTimeout = 3 * time.Second
	err := partitionsError(t, cfg, nil)
	if backfill.KindOf(err) != backfill.KindConfig {
		t.Fatalf("want a config error, got %v", err)
	}
	if !strings.Contains(err.Error(), "certificate verify failed") || !strings.Contains(err.Error(), "kafka.tls_ca_file") {
		t.Fatalf("the error does not say the certificate was not trusted: %v", err)
	}
}

func TestTLSInsecureSkipVerify(t *testing.T) {
	serverTLS, _ := tlsFiles(t)
	c := authCluster(t, kfake.TLS(serverTLS))
	cfg := testConfig(c.ListenAddrs())
	cfg.SecurityProtocol, cfg.TLSInsecureSkipVerify = "SSL", true
	produceAll(t, c, cfg, nil, 50)
}

// SASL_SSL with SCRAM-SHA-512 is how MSK serves SCRAM.
func TestSASLSSLWithSCRAM512(t *testing.T) {
	serverTLS, caFile := tlsFiles(t)
	c := authCluster(t, kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", saslUser, saslPassword))
	cfg := saslConfig(c.ListenAddrs(), "SASL_SSL", "SCRAM-SHA-512", saslPassword)
	cfg.TLSCAFile = caFile
	var logs logBuffer
	produceAll(t, c, cfg, logs.logger(), 200)
	noSecret(t, "the producer's log", logs.String(), saslPassword)
}

// A principal without ACLs on the topic (with MSK IAM: a role without
// kafka-cluster:DescribeTopic) is a configuration error, not an outage.
func TestTopicNotAuthorizedIsAConfigError(t *testing.T) {
	c := authCluster(t, kfake.EnableSASL(), kfake.EnableACLs(), kfake.User("SCRAM-SHA-512", saslUser, saslPassword))
	cfg := saslConfig(c.ListenAddrs(), "SASL_PLAINTEXT", "SCRAM-SHA-512", saslPassword)
	err := partitionsError(t, cfg, nil)
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "not authorized") || !strings.Contains(err.Error(), `"backfill"`) {
		t.Fatalf("want a config error naming the user, got %v", err)
	}
	noSecret(t, "the error", err.Error(), saslPassword)
}
