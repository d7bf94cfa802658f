package ksqldb

import (
	"regexp"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// groupDeniedMessage matches ksqlDB's KsqlGroupAuthorizationException,
// "Authorization denied to Describe on group: [<group>]"
// (KafkaConsumerGroupClientImpl, v0.15.0-ksqldb to v0.29.0), and Kafka's own
// GroupAuthorizationException, "Not authorized to access group: <group>".
var groupDeniedMessage = regexp.MustCompile(`Authorization denied to \w+ on group: \[([^\]]*)\]|Not authorized to access group: ?(\S*)`)

// deniedGroup returns the consumer group a ksqlDB message says the
// server's principal may not describe.
func deniedGroup(msg string) (string, bool) {
	m := groupDeniedMessage.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	return m[1] + m[2], true
}

// groupACLError names a missing group ACL: retrying cannot grant it.
func groupACLError(group, what string) error {
	return backfill.Errorf(backfill.KindConfig,
		"the ksqlDB server's principal lacks DESCRIBE/READ on consumer group %s, so ksqlDB cannot say how far the table's query has read (%s): "+
			"grant that principal DESCRIBE and READ on the group (e.g. kafka-acls --add --allow-principal <ksqlDB's principal> --operation Describe --operation Read --group '%s')",
		orString(group, "<the table query's group>"), what, orString(group, "_confluent-ksql-*"))
}
