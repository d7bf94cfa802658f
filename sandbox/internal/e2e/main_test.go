// Package e2e runs the real backfill binary end to end against the
// sandbox stack: kfake, the BigQuery emulator and the registry and ksqlDB
// doubles. Every test that needs the emulator lives here so that it links once.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "backfill-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	backfillBin = filepath.Join(dir, "backfill")
	// Built in the job's module, with its dependency versions, as the
	// release binary is.
	build := exec.Command("go", "build", "-o", backfillBin, "./cmd/backfill")
	build.Dir = "../../.."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/backfill:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
