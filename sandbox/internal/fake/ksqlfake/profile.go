package ksqlfake

import (
	"fmt"
	"strconv"
	"strings"
)

// Profile is how one ksqlDB release answers the requests the backfill
// sends. ProfileFor derives it from a version; a test may then change a
// field to model a server configured away from its release's defaults.
// Every field names the ksqlDB source it follows (github.com/confluentinc/ksql
// at the release tags; paths under ksqldb-rest-app/…/ksql, ksqldb-engine/…/ksql
// and ksqldb-common/…/ksql).
type Profile struct {
	// Version is what GET /info reports: the build's Maven version, e.g.
	// "0.23.1" or "7.4.0" (AppInfo.java, v0.15.0-ksqldb to v8.3.1).
	Version string
	// QueryRefusedOverHTTP2: a pull query on POST /query over HTTP/2 is
	// answered 405 with an empty body, the reason only in the status line,
	// which HTTP/2 does not carry (api/server/OldApiUtils.java
	// handleOldApiResponse). Pull queries are streamed from 0.16 (#6813);
	// from 0.24 and CP 7.2, ksql.endpoint.migrate.query (default true,
	// KsqlConfig.java v0.24.0) hands /query to the /query-stream handler.
	QueryRefusedOverHTTP2 bool
	// QueryStreamHTTP1: POST /query-stream answers over HTTP/1.1 (0.24 and
	// CP 7.1 on, #8449). Before, it answers 400 / 40004 (ServerUtils.java
	// checkHttp2, v0.15.0-ksqldb to v7.0.0).
	QueryStreamHTTP1 bool
	// PullLimit: pull queries accept LIMIT (0.24 and CP 7.1 on, #8333);
	// before, engine/analyzer/PullQueryValidator.java refuses it with
	// 400 / 40001.
	PullLimit bool
	// TableScans is ksql.query.pull.table.scan.enabled's default
	// (KsqlConfig.java): absent on 0.15, false on 0.17–0.21 and CP 7.0,
	// true from 0.22 (#8064) and CP 7.1.
	TableScans bool
	// RateLimitQuery is the status of a rate-limited pull query on /query:
	// 400 (error_code 40000, the rate-limit message) where the old handler
	// serves /query; 500 (50000, a generic internal-error message) where
	// the /query-stream handler does, before 0.28.2; 429 (42900) from
	// 0.28.2 and CP 7.3 (ServerUtils.java handleEndpointException,
	// KsqlRateLimitException; PullQueryExecutionUtil.java v0.22.0-ksqldb).
	RateLimitQuery int
	// RateLimitQueryStream is the same on /query-stream: 500 before
	// 0.28.2, 429 from then on.
	RateLimitQueryStream int
	// DescribePartitions: DESCRIBE without EXTENDED fills partitions. On
	// 0.15 the topic is described for EXTENDED only, so partitions is 0
	// (rest/server/execution/ListSourceExecutor.java v0.15.0-ksqldb); from
	// 0.16 (#6827) always.
	DescribePartitions bool
	// OffsetErrorsAsWarnings: when Kafka fails while DESCRIBE … EXTENDED
	// reads the table query's committed offsets (a KafkaException, e.g. a
	// GroupAuthorizationException, or KafkaResponseGetFailedException),
	// 0.15 answers 200 with queryOffsetSummaries [] and a warning "Error
	// from Kafka: …" (rest/server/execution/ListSourceExecutor.java
	// describeSource, v0.15.0-ksqldb: queryOffsetSummaries is built inside
	// the try). From 0.16 the call sits outside the try
	// (v0.16.0-rc938-ksqldb, v0.22.0-ksqldb, v7.4.0), so the exception
	// reaches KsqlResource.handleKsqlStatements, whose catch-all answers
	// 500 / 50000 with its message (Errors.serverErrorForStatement; only a
	// TopicAuthorizationException is special-cased, Errors.generateResponse).
	OffsetErrorsAsWarnings bool
	// CommitOnlyAfterRecord: Kafka Streams commits a task's position only
	// when processing a record set commitNeeded, so a position that moved
	// past a transaction marker alone is not committed until the next
	// record (StreamTask.commitNeeded, apache/kafka before 3.1; fixed by
	// apache/kafka#11151, which also commits when consumer.position() moved
	// beyond the consumed offset). ksqlDB 0.15–0.22 and CP 6.2/7.0 build on
	// Kafka Streams 2.7–3.0 (the io.confluent:common parent in pom.xml at
	// v0.15.0-ksqldb, v7.0.0).
	CommitOnlyAfterRecord bool
}

// Profiles the end-to-end tests run: the oldest release the job supports,
// the last of each behaviour change, and the newest.
var Profiles = []string{"0.15.0", "0.23.1", "0.28.2", "0.29.0", "7.1.0", "8.3.1"}

// ProfileFor returns the profile of a ksqlDB version: an open-source
// release (0.x.y) or a Confluent Platform one (6.2 and later).
func ProfileFor(version string) (Profile, error) {
	major, minor, patch, err := splitVersion(version)
	if err != nil {
		return Profile{}, err
	}
	var p Profile
	switch {
	case major == 0 && minor >= 15:
		at := func(m, pt int) bool { return minor > m || (minor == m && patch >= pt) }
		p = Profile{
			QueryRefusedOverHTTP2:  at(16, 0) && !at(24, 0),
			QueryStreamHTTP1:       at(24, 0),
			PullLimit:              at(24, 0),
			TableScans:             at(22, 0),
			RateLimitQuery:         400,
			RateLimitQueryStream:   500,
			DescribePartitions:     at(16, 0),
			OffsetErrorsAsWarnings: !at(16, 0),
			CommitOnlyAfterRecord:  !at(23, 0),
		}
		switch {
		case at(28, 2):
			p.RateLimitQuery, p.RateLimitQueryStream = 429, 429
		case at(24, 0):
			p.RateLimitQuery = 500
		}
	case major == 6 && minor == 2: // ksqlDB 0.17
		p, _ = ProfileFor("0.17.0")
		p.CommitOnlyAfterRecord = true
	case major == 7 && minor == 0: // like 0.21/0.22, table scans off
		p = Profile{QueryRefusedOverHTTP2: true, RateLimitQuery: 400, RateLimitQueryStream: 500, DescribePartitions: true, CommitOnlyAfterRecord: true}
	case major == 7 && minor == 1: // HTTP/1.1 /query-stream and LIMIT, but /query not migrated
		p = Profile{QueryRefusedOverHTTP2: true, QueryStreamHTTP1: true, PullLimit: true, TableScans: true,
			RateLimitQuery: 400, RateLimitQueryStream: 500, DescribePartitions: true}
	case major == 7 && minor == 2: // /query migrated, no 429 yet
		p = Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: 500, RateLimitQueryStream: 500, DescribePartitions: true}
	case major == 7 || major == 8:
		p = Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: 429, RateLimitQueryStream: 429, DescribePartitions: true}
	default:
		return Profile{}, fmt.Errorf("ksqlDB %s: the double models ksqlDB 0.15 and later and Confluent Platform 6.2 to 8.x", version)
	}
	p.Version = version
	return p, nil
}

// splitVersion parses major.minor[.patch[-suffix]].
func splitVersion(version string) (major, minor, patch int, err error) {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return 0, 0, 0, fmt.Errorf("ksqlDB version %q is not major.minor[.patch]", version)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, 0, fmt.Errorf("ksqlDB version %q is not major.minor[.patch]", version)
	}
	if len(parts) == 3 {
		digits := parts[2] // "1", "1-rc3", "0-364"
		if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = digits[:i]
		}
		patch, _ = strconv.Atoi(digits)
	}
	return major, minor, patch, nil
}

// Messages of the answers that differ between releases.
const (
	// msgPullLimit: PullQueryValidator.java (v0.22.0-ksqldb), before 0.24.
	msgPullLimit = "Pull queries don't support LIMIT clauses. See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query."
	// msgTableScan begins the answer to a pull query without WHERE when
	// table scans are off (planner/LogicalPlanner.java, v0.22.0-ksqldb).
	msgTableScan = "Missing WHERE clause.  See https://cnfl.io/queries for more info."
	// msgQueryStreamHTTP1: ServerUtils.java checkHttp2 (v0.22.0-ksqldb),
	// with error_code ERROR_CODE_HTTP2_ONLY = 40004 (Errors.java).
	msgQueryStreamHTTP1 = "This endpoint is only available when using HTTP2"
	// msgRateLimit: PullQueryExecutionUtil.java checkRateLimit
	// (v0.22.0-ksqldb); the rate is ksql.query.pull.max.qps.
	msgRateLimit = "Host is at rate limit for pull queries. Currently set to 1.0 qps."
	// msgInternal: ServerUtils.java handleEndpointException
	// (v0.22.0-ksqldb, v0.27.2) for exceptions it does not map.
	msgInternal = "The server encountered an internal error when processing the query. Please consult the server logs for more information."
)
