package httpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const password = "p@ss:w/rd 100%"

func TestRedactURL(t *testing.T) {
	t.Parallel()
	withPassword := (&url.URL{Scheme: "https", User: url.UserPassword("job", password), Host: "ksqldb:8088", Path: "/info"}).String()
	for raw, want := range map[string]string{
		withPassword:                     "https://job:redacted@ksqldb:8088/info",
		"http://token@registry:8081":     "http://redacted@registry:8081",
		"http://registry:8081/subjects":  "http://registry:8081/subjects",
		"http://job:s3cret@r:80:80/x":    "http://redacted@r:80:80/x", // does not parse
		"job:s3cret@registry:8081":       "redacted@registry:8081",    // parses as scheme "job"
		"http://job:s3cr%zzet@registry/": "http://redacted@registry/", // does not parse
	} {
		got := RedactURL(raw)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
		if strings.Contains(got, "s3cr") || strings.Contains(got, "w%2Frd") || strings.Contains(got, "p%40ss") {
			t.Errorf("RedactURL(%q) = %q keeps the password", raw, got)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	userinfo := url.UserPassword("job", password).String() // job:p%40ss%3Aw%2Frd%20100%25
	for _, text := range []string{
		"401: user job with password " + password + " refused",
		`Get "https://` + userinfo + `@ksqldb:8088/info": EOF`,
		"GET /query?password=" + url.QueryEscape(password),
		"GET /x/" + url.PathEscape(password),
		fmt.Errorf("calling: %w", errors.New("echo "+password)).Error(),
	} {
		got := Redact(text, "", password)
		if strings.Contains(got, password) || strings.Contains(got, strings.TrimPrefix(userinfo, "job:")) ||
			strings.Contains(got, url.QueryEscape(password)) || strings.Contains(got, url.PathEscape(password)) {
			t.Errorf("Redact(%q) = %q keeps the password", text, got)
		}
		if !strings.Contains(got, Redacted) {
			t.Errorf("Redact(%q) = %q does not say what it removed", text, got)
		}
	}
	// Inside a JSON string, escaped by Go (with <, >, & as \u003c…) or not.
	for _, secret := range []string{`pa"ss\\word`, "a<b>&c\"d"} {
		for _, body := range []string{mustJSON(t, secret, true), mustJSON(t, secret, false)} {
			if got := Redact(`{"message":`+body+`}`, secret); got != `{"message":"`+Redacted+`"}` {
				t.Errorf("Redact(%s) = %s, want the JSON-escaped secret removed", body, got)
			}
		}
	}
	if got := Redact("nothing secret", ""); got != "nothing secret" {
		t.Errorf("an empty password redacts: %q", got)
	}
}

func mustJSON(t *testing.T, s string, html bool) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

// RedactURL also removes the secrets given, where the URL holds them
// outside its userinfo.
func TestRedactURLWithSecrets(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"http://job:s3cret@ksqldb:8088/?password=s3cret": "http://job:redacted@ksqldb:8088/?password=" + Redacted,
		"http://ksqldb:8088/%zz?token=s3cret":            "http://ksqldb:8088/%zz?token=" + Redacted, // does not parse
		"http://ksqldb:8088":                             "http://ksqldb:8088",
	} {
		if got := RedactURL(raw, "", "s3cret"); got != want {
			t.Errorf("RedactURL(%q, secret) = %q, want %q", raw, got, want)
		}
	}
}
