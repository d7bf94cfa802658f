package ksqldb

import (
	"fmt"
	"strconv"
	"strings"
)

// Profile is how one ksqlDB release answers the requests the backfill
// sends. ProfileFor derives it from a version; a test may then change a
// field to model a server configured away from its release's defaults.
// Every field names the ksqlDB source it follows, at the release tags of
// github.com/confluentinc/ksql.
type Profile struct {
	// Version is what GET /info reports, e.g. "0.23.1" or "7.4.0".
	Version string
	// QueryRefusedOverHTTP2: POST /query over HTTP/2 answers 405 with an
	// empty body, the message only in the status line (which HTTP/2 does
	// not carry). 0.17 to 0.23, Confluent Platform 6.2 to 7.1:
	// ksqldb-rest-app/…/api/server/OldApiUtils.java (v0.17.0-ksqldb,
	// v0.22.0-ksqldb, v7.1.0) handleOldApiResponse; from 0.24 /query is
	// served by the new API's handler (ksql.endpoint.migrate.query,
	// KsqlRestConfig.java v0.24.0).
	QueryRefusedOverHTTP2 bool
	// QueryStreamHTTP1: POST /query-stream answers over HTTP/1.1. Before
	// 0.24 (Confluent Platform before 7.2) it answers 400 with error_code
	// 40004: ksqldb-rest-app/…/api/server/ServerUtils.java checkHttp2
	// (v0.15.0-ksqldb to v0.22.0-ksqldb, v7.1.0).
	QueryStreamHTTP1 bool
	// PullLimit: pull queries accept LIMIT (0.24 on, confluentinc/ksql
	// #8333; ksqldb-engine/…/analyzer/PullQueryValidator.java v0.24.0).
	PullLimit bool
	// TableScans is ksql.query.pull.table.scan.enabled's default: pull
	// queries without a WHERE clause (KsqlConfig.java: added in 0.18 off,
	// default true from v0.22.0-ksqldb; v7.0.0 ships it false).
	TableScans bool
	// RateLimit429: the pull-query rate limit answers 429 with error_code
	// 42900 (KsqlRateLimitException, v0.28.2). Before, RateLimiter.java
	// throws a KsqlException, answered 400 / 40000 like any bad statement.
	RateLimit429 bool
	// DescribePartitions: DESCRIBE without EXTENDED fills partitions.
	// On 0.15 the topic is only read for EXTENDED, so partitions is 0
	// (ksqldb-rest-app/…/server/execution/ListSourceExecutor.java
	// v0.15.0-ksqldb; filled from v0.22.0-ksqldb).
	DescribePartitions bool
}

// Profiles the end-to-end tests run: the oldest release the job supports,
// the last one of each behaviour change, and the newest.
var Profiles = []string{"0.15.0", "0.23.1", "0.28.2", "0.29.0", "7.4.0", "8.0.0"}

// ProfileFor returns the profile of a ksqlDB version: an open-source
// release (0.x.y) or a Confluent Platform one (6.x, 7.x, 8.x, which ship
// ksqlDB builds of their own numbering).
func ProfileFor(version string) (Profile, error) {
	o, err := openSourceEquivalent(version)
	if err != nil {
		return Profile{}, err
	}
	p := Profile{
		Version:               version,
		QueryRefusedOverHTTP2: o.atLeast(17, 0) && !o.atLeast(24, 0),
		QueryStreamHTTP1:      o.atLeast(24, 0),
		PullLimit:             o.atLeast(24, 0),
		TableScans:            o.atLeast(22, 0),
		RateLimit429:          o.atLeast(28, 2),
		DescribePartitions:    o.atLeast(22, 0),
	}
	if strings.HasPrefix(version, "7.0.") {
		p.TableScans = false // Confluent Platform 7.0 ships table scans off (KsqlConfig.java v7.0.0)
	}
	return p, nil
}

// release is an open-source ksqlDB version 0.minor.patch.
type release struct{ minor, patch int }

func (r release) atLeast(minor, patch int) bool {
	return r.minor > minor || (r.minor == minor && r.patch >= patch)
}

// confluentPlatform maps Confluent Platform minor releases to the
// open-source ksqlDB release they correspond to (Confluent's ksqlDB
// versioning table; 7.4 is the last one with an open-source twin, later
// releases behave at least like 0.29).
var confluentPlatform = map[string]release{
	"6.0": {10, 2}, "6.1": {15, 0}, "6.2": {17, 0},
	"7.0": {21, 0}, "7.1": {23, 1}, "7.2": {26, 0}, "7.3": {28, 2}, "7.4": {29, 0},
}

func openSourceEquivalent(version string) (release, error) {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return release{}, fmt.Errorf("ksqlDB version %q is not major.minor[.patch]", version)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	patch := 0
	if len(parts) == 3 {
		digits := parts[2] // "1", "1-rc3", "0-ce"
		if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = digits[:i]
		}
		patch, _ = strconv.Atoi(digits)
	}
	if err1 != nil || err2 != nil {
		return release{}, fmt.Errorf("ksqlDB version %q is not major.minor[.patch]", version)
	}
	switch {
	case major == 0 && minor >= 15:
		return release{minor, patch}, nil
	case major == 0:
		return release{}, fmt.Errorf("ksqlDB %s is older than 0.15, the oldest release the double models", version)
	case major == 6 || (major == 7 && minor <= 4):
		r, ok := confluentPlatform[fmt.Sprintf("%d.%d", major, minor)]
		if !ok || r.minor < 15 {
			return release{}, fmt.Errorf("Confluent Platform %s ships a ksqlDB older than 0.15", version)
		}
		return r, nil
	case major >= 7:
		return release{29, 0}, nil
	}
	return release{}, fmt.Errorf("ksqlDB version %q is not a ksqlDB or Confluent Platform release", version)
}

// Messages of the answers that differ between releases.
const (
	// msgPullLimit: PullQueryValidator.java (v0.22.0-ksqldb), before 0.24.
	msgPullLimit = "Pull queries don't support LIMIT clauses."
	// msgTableScan ends QueryFilterNode.java's invalid-pull-query message
	// (v0.22.0-ksqldb) when table scans are off.
	msgTableScan = "Pull queries on tables need a WHERE clause on the key column. If more flexible queries are needed, , table scans can be enabled by setting ksql.query.pull.table.scan.enabled=true."
	// msgQueryStreamHTTP1: ServerUtils.java checkHttp2 (v0.22.0-ksqldb),
	// with error_code ERROR_CODE_HTTP2_ONLY = 40004 (Errors.java).
	msgQueryStreamHTTP1 = "This endpoint is only available when using HTTP2"
	// msgRateLimit: PullQueryExecutionUtil.java checkRateLimit
	// (v0.22.0-ksqldb); the rate is ksql.query.pull.max.qps.
	msgRateLimit = "Host is at rate limit for pull queries. Currently set to 1.0 qps."
)
