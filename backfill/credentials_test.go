package backfill

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The credentials' description logs as a group of its set fields, named
// as in the report, in both log formats.
func TestGoogleCredentialsLogValue(t *testing.T) {
	t.Parallel()
	g := GoogleCredentials{Type: "external_account", Source: "GOOGLE_APPLICATION_CREDENTIALS", File: "/etc/gcp-wif/credential-config.json",
		TokenFile: "/var/run/secrets/gcp-wif/token", ServiceAccount: "sa@p.iam.gserviceaccount.com"}
	var js, text bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "google_credentials", g)
	slog.New(slog.NewTextHandler(&text, nil)).Info("x", "google_credentials", g)
	if want := `"google_credentials":{"type":"external_account","source":"GOOGLE_APPLICATION_CREDENTIALS","file":"/etc/gcp-wif/credential-config.json","token_file":"/var/run/secrets/gcp-wif/token","service_account":"sa@p.iam.gserviceaccount.com"}`; !strings.Contains(js.String(), want) {
		t.Errorf("JSON: %s\nwant %s", js.String(), want)
	}
	if want := "google_credentials.type=external_account google_credentials.source=GOOGLE_APPLICATION_CREDENTIALS"; !strings.Contains(text.String(), want) {
		t.Errorf("text: %s\nwant %s", text.String(), want)
	}
}
