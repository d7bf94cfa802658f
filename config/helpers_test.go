package config

var required = []string{"--bigquery-project=p", "--bigquery-table=p.d.orders", "--kafka-brokers=b:9092",
	"--schema-registry-url=http://sr:8081", "--ksqldb-url=http://ksql:8088"}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
