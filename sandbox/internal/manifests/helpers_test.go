package manifests_test

import (
	"errors"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// kustomization is the part of a kustomization.yaml the test reads.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Patches    []struct {
		Path string `json:"path"`
	} `json:"patches"`
	Replacements []replacement `json:"replacements"`
}

// mustLoad is load for tests that check invariants: it stops on decoding
// errors (TestManifestsDecodeStrictly reports them) and on an empty tree.
func mustLoad(t *testing.T) *manifests {
	t.Helper()
	m := load(t)
	if len(m.errs) > 0 {
		t.Fatalf("manifests do not load (see TestManifestsDecodeStrictly): %v", errors.Join(m.errs...))
	}
	if len(m.jobs()) == 0 {
		t.Fatal("no Job among the kustomize resources under k8s/")
	}
	return m
}

func checkPodFailurePolicy(t *testing.T, p *batchv1.PodFailurePolicy) {
	t.Helper()
	if p == nil {
		t.Error("podFailurePolicy not set")
		return
	}
	for _, code := range fatalExitCodes {
		if a := exitAction(p, code); a != batchv1.PodFailurePolicyActionFailJob {
			t.Errorf("exit code %d: action %q, want FailJob (retrying cannot help)", code, a)
		}
	}
	// A verification failure or a stalled ksqlDB (6) is not retried: a
	// retry would look keys up in a table that may not have caught up.
	if a := exitAction(p, 6); a != batchv1.PodFailurePolicyActionFailJob && a != batchv1.PodFailurePolicyActionFailIndex {
		t.Errorf("exit code 6: action %q, want FailJob (or FailIndex in an Indexed Job): investigate before rerunning", a)
	}
	for _, code := range retriableExitCodes {
		if a := exitAction(p, code); a == batchv1.PodFailurePolicyActionFailJob {
			t.Errorf("exit code %d fails the Job, but a retry may succeed", code)
		}
	}
	ignoresDisruption := false
	for _, r := range p.Rules {
		for _, c := range r.OnPodConditions {
			if r.Action == batchv1.PodFailurePolicyActionIgnore && c.Type == corev1.DisruptionTarget &&
				(c.Status == "" || c.Status == corev1.ConditionTrue) {
				ignoresDisruption = true
			}
		}
	}
	if !ignoresDisruption {
		t.Error("podFailurePolicy has no Ignore rule on DisruptionTarget: evictions would use up backoffLimit")
	}
}
