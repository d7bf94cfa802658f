package kafka

import (
	"maps"
	"slices"
	"testing"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The consumers (read-back, transaction markers) reach the brokers as the
// producer does, and take none of the producer's settings.
func TestConsumersShareTheProducersConnection(t *testing.T) {
	cfg := testConfig([]string{unreachable})
	cfg.SecurityProtocol, cfg.SASLMechanism, cfg.SASLUsername, cfg.SASLPassword = "SASL_SSL", "SCRAM-SHA-512", "backfill", "s3cret"
	cfg.TLSCAFile = "/etc/ssl/certs/ca-certificates.crt"
	cfg.Properties = map[string]string{"socket.keepalive.enable": "true", "isolation.level": "read_uncommitted"}
	prod, err := cfg.producerConfig()
	if err != nil {
		t.Fatal(err)
	}
	cons, err := cfg.consumerConfig("ordermin-backfill-test", "read_committed", "error")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.connection("ordermin-backfill")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range conn {
		if k != "client.id" && cons[k] != v {
			t.Errorf("consumer %s = %v, producer's connection has %v", k, cons[k], v)
		}
		if prod[k] != v {
			t.Errorf("producer %s = %v, connection has %v", k, prod[k], v)
		}
	}
	if cons["socket.keepalive.enable"] != "true" {
		t.Errorf("the user's property did not reach the consumer: %v", cons["socket.keepalive.enable"])
	}
	if cons["isolation.level"] != "read_committed" {
		t.Errorf("isolation.level = %v: the consumer's own setting must win over the user's property", cons["isolation.level"])
	}
	consumerOwn := []string{"group.id", "enable.auto.commit", "enable.partition.eof", "isolation.level", "auto.offset.reset"}
	for _, k := range slices.Sorted(maps.Keys(cons)) {
		_, fromConn := conn[k]
		_, fromUser := cfg.Properties[k]
		if !fromConn && !fromUser && !slices.Contains(consumerOwn, k) {
			t.Errorf("the consumer gets %s=%v, which is neither the connection's, the user's nor a consumer setting", k, cons[k])
		}
	}
	for _, k := range []string{"linger.ms", "acks", "enable.idempotence", "go.delivery.report.fields", "compression.type"} {
		if _, ok := prod[k]; !ok {
			t.Errorf("the producer lacks %s", k)
		}
	}
	c, err := ckafka.NewConsumer(&cons) // librdkafka takes it
	if err != nil {
		t.Fatalf("librdkafka refuses the consumer's configuration: %v", err)
	}
	c.Close()
}
