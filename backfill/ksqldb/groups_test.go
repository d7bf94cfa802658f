package ksqldb

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

func TestDeniedGroup(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]string{
		"Authorization denied to Describe on group: [_confluent-ksql-default_query_CTAS_T_1]":                  "_confluent-ksql-default_query_CTAS_T_1",
		"Error from Kafka: Authorization denied to Describe on group: [_confluent-ksql-x_pq_CTAS_T_1]":         "_confluent-ksql-x_pq_CTAS_T_1",
		"org.apache.kafka.common.errors.GroupAuthorizationException: Not authorized to access group: my-group": "my-group",
	} {
		if got, ok := deniedGroup(msg); !ok || got != want {
			t.Errorf("deniedGroup(%q) = %q, %v; want %q", msg, got, ok, want)
		}
	}
	if _, ok := deniedGroup("Failed to list Kafka consumer groups offsets"); ok {
		t.Error("a Kafka outage read as a missing ACL")
	}
	e := &APIError{Endpoint: "POST /ksql", Status: 500, Code: 50000, Message: "Authorization denied to Describe on group: [g]"}
	failed := &httpc.Error{Err: e, Status: e.Status, Retryable: e.Retryable()}
	if e.Retryable() || backfill.KindOf(classify(e, failed)) != backfill.KindConfig || !strings.Contains(classify(e, failed).Error(), "lacks DESCRIBE/READ on consumer group g") {
		t.Errorf("retryable %v, classified %v", e.Retryable(), classify(e, failed))
	}
}

func TestQueryGroupMatchesTheQueryIDWhateverThePrefix(t *testing.T) {
	t.Parallel()
	for group, want := range map[string]bool{
		"_confluent-ksql-default_query_CTAS_T_1": true,
		"_confluent-ksql-default_pq_CTAS_T_1":    true,
		"_confluent-ksql-svcCTAS_T_1":            true,
		"_confluent-ksql-default_query_CTAS_T_2": false,
		"other-app-CTAS_T_1":                     false,
	} {
		if got := queryGroup(group, "CTAS_T_1"); got != want {
			t.Errorf("queryGroup(%q) = %v", group, got)
		}
	}
}

func TestMarkerCheckKeepsWhatItCannotProve(t *testing.T) {
	t.Parallel()
	calls := 0
	only := func(_ context.Context, p int32, from, to int64) (bool, error) {
		calls++
		switch p {
		case 0:
			return true, nil
		case 1:
			return false, nil
		}
		return false, errors.New("broker down")
	}
	m := newMarkerCheck(only, slog.New(slog.DiscardHandler), "test")
	parts := []backfill.PartitionLag{{Partition: 0, Target: 5, Committed: 4, Lag: 1}, {Partition: 1, Target: 9, Committed: 7, Lag: 2}, {Partition: 2, Target: 3, Committed: 0, Lag: 3}}
	for round := range 2 {
		lag, left := m.drop(context.Background(), parts)
		if lag != 5 || len(left) != 2 || left[0].Partition != 1 || left[1].Partition != 2 {
			t.Fatalf("round %d: lag %d, behind %+v", round, lag, left)
		}
	}
	if calls != 4 { // partitions 0 and 1 once, partition 2 (failing) each round
		t.Errorf("%d checks; answers are remembered per partition and offsets", calls)
	}
	if lag, left := newMarkerCheck(nil, slog.New(slog.DiscardHandler), "test").drop(context.Background(), parts); lag != 6 || len(left) != 3 {
		t.Errorf("without a check: lag %d, %+v", lag, left)
	}
}
