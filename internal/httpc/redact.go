package httpc

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// Redacted stands in for a removed secret.
const Redacted = "[redacted]"

// Redact returns s with every occurrence of each non-empty secret
// replaced by Redacted, also where the secret appears percent-encoded as
// in a URL's userinfo, path or query, or escaped as in a JSON string (an
// error answer's body).
func Redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		s = strings.ReplaceAll(s, secret, Redacted)
		userinfo := strings.TrimPrefix(url.UserPassword("", secret).String(), ":")
		for _, enc := range []string{userinfo, url.PathEscape(secret), url.QueryEscape(secret), jsonEscape(secret, true), jsonEscape(secret, false)} {
			if enc != secret {
				s = strings.ReplaceAll(s, enc, Redacted)
			}
		}
	}
	return s
}

// jsonEscape returns secret as it appears inside a JSON string, with or
// without the HTML-safe escapes of <, > and & (Go escapes them, Jackson
// does not).
func jsonEscape(secret string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(secret) // a string always encodes
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
}

// RedactURL returns raw with the userinfo's password replaced by
// "redacted", so that a URL can be shown in an error or a log, and then
// with the secrets removed as Redact does, for a password that is set
// apart from the URL but appears in it too. The user name stays when a
// password follows it; alone, it may be a token and is replaced too. A
// URL that does not parse loses all of its userinfo.
func RedactURL(raw string, secrets ...string) string {
	return Redact(redactUserinfo(raw), secrets...)
}

// redactUserinfo is RedactURL without secrets.
func redactUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactAuthority(raw)
	}
	if u.Opaque != "" && strings.Contains(u.Opaque, "@") {
		// "user:password@host:port" parses as scheme "user", opaque "password@host:port".
		return "redacted@" + u.Opaque[strings.LastIndex(u.Opaque, "@")+1:]
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		} else {
			u.User = url.User("redacted")
		}
	}
	return u.String()
}

// redactAuthority removes the userinfo of a URL that url.Parse refused, by
// its text: everything before the authority's last "@".
func redactAuthority(raw string) string {
	rest := raw
	scheme := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		return scheme + "redacted@" + rest[at+1:]
	}
	return raw
}
