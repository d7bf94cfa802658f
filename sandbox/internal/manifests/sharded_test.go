package manifests_test

import (
	"os"
	"strconv"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// The sharded overlay's patch must make an Indexed Job whose shard count
// matches its completions, with per-index retries.
func TestShardedOverlayIsAnIndexedJob(t *testing.T) {
	m := mustLoad(t)
	var job *batchv1.Job
	for _, o := range m.objects {
		if j, ok := o.obj.(*batchv1.Job); ok && o.file == "overlays/sharded/job-indexed.yaml" {
			job = j
		}
	}
	if job == nil {
		t.Fatal("overlays/sharded/job-indexed.yaml has no Job patch")
	}
	if !m.patches["overlays/sharded/job-indexed.yaml"] {
		t.Fatal("the sharded Job patch is not listed as a patch in its kustomization")
	}
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode = %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism || *s.Completions < 2 {
		t.Fatalf("completions %v and parallelism %v must be equal and > 1", s.Completions, s.Parallelism)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex < 1 {
		t.Fatal("backoffLimitPerIndex must be set so that a failed shard is retried alone")
	}
	if s.BackoffLimit != nil {
		t.Fatal("backoffLimit must be cleared (null) in favour of backoffLimitPerIndex")
	}
	checkPodFailurePolicy(t, s.PodFailurePolicy)
	var count string
	for _, c := range s.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "BACKFILL_SHARD_COUNT" {
				count = e.Value
			}
		}
	}
	if n, err := strconv.Atoi(count); err != nil || int32(n) != *s.Completions {
		t.Fatalf("BACKFILL_SHARD_COUNT = %q, want %d (= completions)", count, *s.Completions)
	}
}

// The shard count is set once, as the Job's completions: kustomize copies
// it into parallelism and BACKFILL_SHARD_COUNT (checked with kustomize
// v5.6.0's build: completions 6 gave parallelism 6 and "6").
func TestShardCountFollowsCompletions(t *testing.T) {
	raw, err := os.ReadFile("overlays/sharded/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"spec.parallelism": false,
		"spec.template.spec.containers.[name=backfill].env.[name=BACKFILL_SHARD_COUNT].value": false,
	}
	for _, r := range k.Replacements {
		if r.Source.Kind != "Job" || r.Source.Name != "ordermin-backfill" || r.Source.FieldPath != "spec.completions" {
			continue
		}
		for _, tg := range r.Targets {
			if tg.Select.Kind != "Job" || tg.Select.Name != "ordermin-backfill" {
				continue
			}
			for _, f := range tg.FieldPaths {
				if _, ok := want[f]; ok {
					want[f] = true
				}
			}
		}
	}
	for f, ok := range want {
		if !ok {
			t.Errorf("overlays/sharded/kustomization.yaml does not copy the Job's spec.completions into %s", f)
		}
	}
}
