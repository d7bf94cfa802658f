package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testRigs are modules of the sandbox module (sandbox/go.mod) that must
// reach neither the job's binary nor its go.mod: the BigQuery emulator,
// the Kafka-protocol fake and client of the tests, and the Kubernetes API
// types of the manifests' checks.
var testRigs = []string{
	"github.com/goccy/bigquery-emulator",
	"github.com/goccy/go-zetasql",
	"github.com/twmb/franz-go",
	"k8s.io/",
	"sigs.k8s.io/",
}

// The binary links no test rig and no double, and the job's go.mod names
// no test rig's module, so the image's module download fetches none.
func TestTheJobCarriesNoTestRig(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, rig := range append(testRigs, "ordermin-backfill/internal/fake/", "ordermin-backfill/backfill/backfilltest", "ordermin-backfill/sandbox") {
			if strings.Contains(pkg, rig) {
				t.Errorf("cmd/backfill links %s", pkg)
			}
		}
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		for _, rig := range testRigs {
			if strings.HasPrefix(strings.TrimSpace(line), rig) {
				t.Errorf("go.mod requires a test rig's module: %s", strings.TrimSpace(line))
			}
		}
	}
}
