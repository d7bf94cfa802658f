package kafka_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// logBuffer collects a producer's logs so tests can check them for secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tlsFiles makes a self-signed certificate for 127.0.0.1 and localhost and
// returns the broker's TLS config and the path of a PEM file holding the
// certificate, to be trusted as the CA.
func tlsFiles(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, caFile
}

// authCluster starts a one-broker kfake cluster with a 3-partition topic.
func authCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

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

// partitionsError creates a producer and returns what Partitions says.
func partitionsError(t *testing.T, cfg kafka.Config, log *slog.Logger) error {
	t.Helper()
	p, err := kafka.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Partitions(context.Background())
	if err == nil {
		t.Fatal("Partitions succeeded, want an error")
	}
	t.Log(err)
	return err
}

func saslConfig(brokers []string, protocol, mechanism, password string) kafka.Config {
	cfg := testConfig(brokers)
	cfg.SecurityProtocol, cfg.SASLMechanism, cfg.SASLUsername, cfg.SASLPassword = protocol, mechanism, saslUser, password
	return cfg
}

func noSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Fatalf("%s contains a secret: %s", what, s)
		}
	}
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
