package ksqlfake

import (
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
)

// maxLagProp is the pull query's bound on a serving host's offset lag
// (KsqlConfig.KSQL_QUERY_PULL_MAX_ALLOWED_OFFSET_LAG_CONFIG, default
// Long.MAX_VALUE, v0.15.0-ksqldb to v0.29.0).
const maxLagProp = "ksql.query.pull.max.allowed.offset.lag"

// servedByStandby reports whether the lagging standby answers a pull query
// with these request properties: with Config.LaggingStandby, unless lag
// reporting is on and the request's bound is below the standby's lag, as
// MaximumLagFilter.filter excludes a host whose lag exceeds
// getMaxOffsetLagAllowed (rest/server/MaximumLagFilter.java, v0.29.0).
func (s *Server) servedByStandby(props map[string]any) bool {
	if !s.cfg.LaggingStandby {
		return false
	}
	bound := int64(math.MaxInt64)
	switch v := props[maxLagProp].(type) {
	case float64:
		bound = int64(v)
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			bound = n
		}
	case json.Number:
		if n, err := v.Int64(); err == nil {
			bound = n
		}
	}
	lag := s.processed.Load() + s.dropped.Load() // what the active has applied since New
	return !s.cfg.LagReporting || lag <= bound
}

// properties are what SHOW PROPERTIES lists for the settings the double
// models (ListPropertiesExecutor: every KsqlConfig property with scope
// KSQL, values as strings, v0.15.0-ksqldb to v0.29.0). KsqlRestConfig
// properties such as ksql.lag.reporting.enable are not KsqlConfig
// properties and are not listed.
func (s *Server) properties() []map[string]any {
	prop := func(name, value string) map[string]any {
		return map[string]any{"name": name, "scope": "KSQL", "value": value}
	}
	out := []map[string]any{
		prop("ksql.service.id", serviceID),
		prop("ksql.persistent.prefix", s.cfg.PersistentPrefix),
		prop("ksql.query.pull.enable.standby.reads", strconv.FormatBool(s.cfg.LaggingStandby)),
		prop(maxLagProp, strconv.FormatInt(math.MaxInt64, 10)),
		prop("ksql.streams.commit.interval.ms", strconv.FormatInt(s.cfg.CommitInterval.Milliseconds(), 10)),
		// ksqlDB's streams default (KsqlConfig, KsqlConstants
		// defaultCacheMaxBytesBufferingConfig, v0.29.0).
		prop("ksql.streams.cache.max.bytes.buffering", strconv.Itoa(DefaultCacheMaxBytes)),
	}
	if s.prof.QueryStreamHTTP1 { // 0.24 and CP 7.1 on define the shared-runtime setting
		out = append(out, prop("ksql.runtime.feature.shared.enabled", strconv.FormatBool(s.cfg.SharedRuntime)))
	}
	for _, name := range slices.Sorted(maps.Keys(s.cfg.ServerProperties)) {
		p := prop(name, s.cfg.ServerProperties[name])
		if i := slices.IndexFunc(out, func(m map[string]any) bool { return m["name"] == name }); i >= 0 {
			out[i] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

// handleShowProperties answers SHOW PROPERTIES with a PropertiesList
// entity (ksqldb-rest-model PropertiesList: properties of name, scope and
// value; overwrittenProperties; defaultProperties).
func (s *Server) handleShowProperties(w http.ResponseWriter, stmt string) {
	writeJSON(w, http.StatusOK, []any{map[string]any{
		"@type": "properties", "statementText": stmt, "properties": s.properties(),
		"overwrittenProperties": []any{}, "defaultProperties": []any{}, "warnings": []any{},
	}})
}
