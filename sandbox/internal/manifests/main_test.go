// Package manifests_test checks the Kubernetes manifests under k8s/ by
// decoding them strictly into the Kubernetes API types, and the ksqlDB
// migrations beside them. It lives in the sandbox module so that the job's
// module does not depend on k8s.io and k8s/ holds manifests only.
package manifests_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the tests from the k8s folder, the manifests' root.
func TestMain(m *testing.M) {
	if err := os.Chdir("../../../k8s"); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
