package kafka

import (
	"fmt"
	"strings"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// noteAuthError remembers a client error that says the client could not
// authenticate or set up TLS, so that Partitions can say why the brokers
// did not answer. librdkafka's messages carry no password or token. A
// verdict (credentials or certificate refused) is not overwritten by a
// later mere connection failure.
func (p *Producer) noteAuthError(e ckafka.Error) {
	switch authKind(e) {
	case authRefused, tlsRefused:
		p.authErr.Store(&e)
	case authDropped:
		if prev := p.authErr.Load(); prev == nil || authKind(*prev) == authDropped {
			p.authErr.Store(&e)
		}
	}
}

const (
	authUnrelated = iota
	authRefused   // the broker or the client refused the SASL credentials
	tlsRefused    // the TLS handshake failed, e.g. an untrusted certificate
	authDropped   // the connection dropped during the SASL exchange or TLS handshake
)

func authKind(e ckafka.Error) int {
	msg := e.Error()
	switch {
	case e.Code() == ckafka.ErrAuthentication || e.Code() == ckafka.ErrSaslAuthenticationFailed:
		return authRefused
	case e.Code() == ckafka.ErrSsl || strings.Contains(msg, "certificate verify failed"):
		return tlsRefused
	case strings.Contains(msg, "SASL") || strings.Contains(msg, "SSL"):
		// A connection closed in the middle of the SASL exchange or the
		// TLS handshake (as some brokers do on bad credentials) may be
		// transient too: it explains, but is not taken as a verdict.
		return authDropped
	}
	return authUnrelated
}

// authFailure explains failed start-up metadata by the last SASL or TLS
// failure, if there was one: refused credentials or certificates are a
// configuration error (retrying cannot help); a connection dropped during
// the handshake is reported as unavailability with its reason.
func (p *Producer) authFailure(brokers string) error {
	e := p.authErr.Load()
	if e == nil {
		return nil
	}
	mech := p.cfg.SASLMechanism
	switch authKind(*e) {
	case authRefused:
		if mech == AWSMSKIAM {
			return backfill.Errorf(backfill.KindConfig, "MSK IAM authentication to the Kafka brokers %s failed: %w; check kafka.aws_region and that the pod's IAM role (EKS IRSA: the ServiceAccount's eks.amazonaws.com/role-arn) allows kafka-cluster:Connect and WriteDataIdempotently on the cluster and DescribeTopic, WriteData and ReadData on the topic (the policy in k8s/README.md)", brokers, e)
		}
		return backfill.Errorf(backfill.KindConfig, "SASL authentication failed: check kafka.sasl_username/password (mechanism %s, user %q, brokers %s): %w", mech, p.cfg.SASLUsername, brokers, e)
	case tlsRefused:
		return backfill.Errorf(backfill.KindConfig, "TLS with the Kafka brokers %s failed: %w; check kafka.tls_ca_file (the CA that signed the brokers' certificates), the broker host names and kafka.security_protocol", brokers, e)
	}
	return backfill.Errorf(backfill.KindUnavailable, "cannot connect to the Kafka brokers %s: %w; check kafka.security_protocol, kafka.sasl_mechanism and the credentials", brokers, e)
}

// topicDenied explains a topic the authenticated principal may not see.
func (p *Producer) topicDenied(brokers string, err error) error {
	who := "the SASL user " + fmt.Sprintf("%q", p.cfg.SASLUsername) + " needs Describe and Write ACLs on it"
	switch p.cfg.SASLMechanism {
	case AWSMSKIAM:
		who = "the pod's IAM role (EKS IRSA) needs kafka-cluster:DescribeTopic, WriteData and ReadData on it (the policy in k8s/README.md)"
	case "":
		who = "the client needs Describe and Write ACLs on it"
	}
	return backfill.Errorf(backfill.KindConfig, "not authorized to use topic %q on %s (%w): %s", p.topic, brokers, err, who)
}
