package ksqldb

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Server settings the job's guarantees depend on, as SHOW PROPERTIES lists
// them (ListPropertiesExecutor: every KsqlConfig property, v0.15.0-ksqldb
// to v0.29.0).
const (
	// settingSharedRuntime makes persistent queries commit under a shared
	// runtime's application id (QueryApplicationId.buildSharedRuntimeId,
	// 0.24 on), while DESCRIBE … EXTENDED reads the per-query group.
	settingSharedRuntime = "ksql.runtime.feature.shared.enabled"
	// settingStandbyReads lets standbys answer pull queries; their lag is
	// bounded only by settingMaxLag (default Long.MAX_VALUE).
	settingStandbyReads = "ksql.query.pull.enable.standby.reads"
	// settingMaxLag bounds a serving host's offset lag; a request may set
	// it (PullQueryConfigRoutingOptions.getMaxOffsetLagAllowed).
	settingMaxLag = "ksql.query.pull.max.allowed.offset.lag"
)

// serverSettings returns the server's KSQL-scoped settings by name.
func (c *Client) serverSettings(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := c.call(ctx, "/ksql", ksqlRequest{KSQL: "SHOW PROPERTIES;", Properties: map[string]any{}}, mediaKsql, func(r io.Reader) error {
		var entities []struct {
			Properties json.RawMessage `json:"properties"`
		}
		if err := json.NewDecoder(r).Decode(&entities); err != nil {
			return err
		}
		for _, e := range entities {
			var list []struct{ Name, Value string }
			if len(e.Properties) == 0 || json.Unmarshal(e.Properties, &list) != nil {
				continue // not a PropertiesList, or one this client cannot read: the settings stay unknown
			}
			for _, p := range list {
				out[p.Name] = p.Value
			}
		}
		return nil
	})
	return out, err
}

// checkSettings reads the server's settings into f, reports those the
// job cannot work with and returns them all (empty when unknown). A server
// that refuses SHOW PROPERTIES (e.g. to a user without the permission)
// leaves them unknown: the barrier's stall message then names the
// shared-runtime setting.
func (c *Client) checkSettings(ctx context.Context, f *Facts, add func(string, ...any)) (map[string]string, error) {
	settings, err := c.serverSettings(ctx)
	switch k := backfill.KindOf(err); {
	case err == nil:
	case k == backfill.KindUnavailable || k == backfill.KindInterrupted:
		return nil, err
	default:
		f.SettingsUnknown = true
		return map[string]string{}, nil
	}
	if strings.EqualFold(settings[settingSharedRuntime], "true") {
		add("ksqlDB runs persistent queries in shared runtimes (%s=true): they commit their offsets under the shared runtime's consumer group, "+
			"while DESCRIBE … EXTENDED reports the table query's own group, which never commits, so the job cannot tell how far table %s has aggregated; "+
			"run the job against a ksqlDB server with %s=false", settingSharedRuntime, QuoteIdentifier(c.table), settingSharedRuntime)
	}
	f.StandbyReads = strings.EqualFold(settings[settingStandbyReads], "true")
	return settings, nil
}
