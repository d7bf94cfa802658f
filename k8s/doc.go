// Package k8s holds the Kubernetes manifests of the backfill Job (a kustomize
// base in base/, overlays in overlays/) and the ksqlDB migrations; its tests
// check the migrations. The manifests' checks live in the sandbox module
// (sandbox/internal/manifests), which may depend on k8s.io/api: every
// manifest decodes strictly into the Kubernetes API types, and the Job keeps
// the conventions a one-shot backfill needs (no concurrent producers, no
// retry on configuration or contract errors, the report as the termination
// message, a locked-down security context, secrets only as read-only files).
package k8s
