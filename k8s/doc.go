// Package k8s holds the Kubernetes manifests of the backfill Job (a kustomize
// base in base/) and, in its tests, the checks that keep them valid: every
// manifest decodes strictly into the k8s.io/api types, and the Job keeps the
// conventions a one-shot backfill needs (no concurrent producers, no retry on
// configuration or contract errors, the report as the termination message,
// a locked-down security context, secrets only as read-only files).
package k8s
