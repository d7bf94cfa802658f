package httpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backfill test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A CA file adds to the system's roots, for both clients.
func TestCAFileAddsToTheSystemRoots(t *testing.T) {
	t.Parallel()
	c, err := Config("ksqldb", caFile(t), false)
	if err != nil {
		t.Fatal(err)
	}
	system, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("no system roots here: %v", err)
	}
	//lint:ignore SA1019 the pools compared are both enumerable on Linux
	if got, want := len(c.RootCAs.Subjects()), len(system.Subjects())+1; got != want {
		t.Fatalf("the pool holds %d subjects, want the system's %d plus the file's", got, want-1)
	}
	if none, _ := Config("ksqldb", "", false); none.RootCAs != nil {
		t.Fatal("without a CA file the system roots must apply (RootCAs nil)")
	}
}

func TestCAFileErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	if _, err := Config("schema_registry", "/nonexistent/ca.pem", false); err == nil || !strings.HasPrefix(err.Error(), "schema_registry.tls_ca_file") {
		t.Errorf("missing file: %v", err)
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600) //nolint:errcheck // read back below
	if _, err := Config("ksqldb", notPEM, false); err == nil || !strings.Contains(err.Error(), "ksqldb.tls_ca_file") || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("not PEM: %v", err)
	}
}

func TestUntrusted(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		x509.UnknownAuthorityError{}, fmt.Errorf("Get: %w", x509.HostnameError{Host: "h"}), x509.CertificateInvalidError{Reason: x509.Expired},
	} {
		if !Untrusted(err) {
			t.Errorf("%T is a certificate failure", err)
		}
	}
	if Untrusted(errors.New("connection refused")) {
		t.Error("a transport error is not a certificate failure")
	}
}
