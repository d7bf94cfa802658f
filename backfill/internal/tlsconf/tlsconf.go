// Package tlsconf builds the TLS client configuration of the HTTP clients
// (ksqlDB, Schema Registry) from their settings, with one meaning for a
// CA file in both, and recognises certificate verification failures.
package tlsconf

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
