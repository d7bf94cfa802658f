package httpc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config returns a TLS 1.2+ client configuration. A CA file adds its PEM
// certificates to the system's roots: a server whose certificate chains to
// either is trusted, so a private CA works beside public ones. prefix
// names the settings in errors (e.g. "ksqldb" for ksqldb.tls_ca_file).
func Config(prefix, caFile string, insecureSkipVerify bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify} //nolint:gosec // opt-in, warned about by the caller
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s.tls_ca_file: %w", prefix, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s.tls_ca_file %q holds no PEM certificate", prefix, caFile)
	}
	c.RootCAs = pool
	return c, nil
}

// Untrusted reports whether err is a TLS certificate verification
// failure: an unknown authority, a name mismatch or an invalid
// certificate.
func Untrusted(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid) || errors.As(err, &verify)
}

// ExplainUntrusted says why the server's certificate was refused and what
// to change, naming the settings with prefix (e.g. "ksqldb"); err is the
// failure, which Untrusted reports. It does not retry: no retry makes a
// certificate trusted. The text holds err's message, which names the URL:
// redact it if that could hold a password.
func ExplainUntrusted(prefix string, err error) string {
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostErr):
		return fmt.Sprintf("the server's TLS certificate is not valid for the name %q (%v): use in %s.url a name the certificate holds, or have the certificate reissued", hostErr.Host, err, prefix)
	case errors.As(err, &invalid) && (invalid.Reason == x509.Expired):
		return fmt.Sprintf("the server's TLS certificate has expired or is not valid yet (%v): have it renewed, or check this machine's clock", err)
	}
	return fmt.Sprintf("the server presented a TLS certificate this job does not trust (%v): set %s.tls_ca_file to a PEM file with the CA that signed it (it is trusted in addition to the system's roots)", err, prefix)
}
