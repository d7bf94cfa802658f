package devbuild

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// noInlining matches one package pattern that DEV_CGO's GOFLAGS compiles
// without inlining.
var noInlining = regexp.MustCompile(`-gcflags=(\S+)=-l\b`)

// emulatorOnlyPatterns returns the package patterns make demo compiles
// without inlining.
func emulatorOnlyPatterns(t *testing.T) []string {
	t.Helper()
	for _, line := range dryRun(t, "demo") {
		if emulatorBuild(line) != "demo" {
			continue
		}
		var patterns []string
		for _, m := range noInlining.FindAllStringSubmatch(line, -1) {
			patterns = append(patterns, m[1])
		}
		if len(patterns) == 0 {
			t.Fatalf("make demo compiles no package without inlining:\n%s", line)
		}
		return patterns
	}
	t.Fatal("no go run of ./cmd/sandbox in make -n demo's output")
	return nil
}

// matchPattern reports whether the import path pkg matches the go command's
// package pattern, in which "..." matches any string and a trailing "/..."
// also matches the path before it ("go help packages").
func matchPattern(pattern, pkg string) bool {
	expr := strings.ReplaceAll(regexp.QuoteMeta(pattern), `\.\.\.`, `.*`)
	if strings.HasSuffix(expr, `/.*`) {
		expr = strings.TrimSuffix(expr, `/.*`) + `(/.*)?`
	}
	return regexp.MustCompile(`^` + expr + `$`).MatchString(pkg)
}

// deps lists the packages the go command builds for pkg, from directory dir.
func deps(t *testing.T, dir, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestMatchPatternFollowsTheGoCommand(t *testing.T) {
	for _, c := range []struct {
		pattern, pkg string
		want         bool
	}{
		{"github.com/envoyproxy/...", "github.com/envoyproxy", true},
		{"github.com/envoyproxy/...", "github.com/envoyproxy/go-control-plane/envoy/config/core/v3", true},
		{"github.com/envoyproxy/...", "github.com/envoyproxyx", false},
		{"google.golang.org/grpc/xds/...", "google.golang.org/grpc", false},
		{"google.golang.org/grpc/xds/...", "google.golang.org/grpc/internal/xds/rbac", false},
		{"cloud.google.com/go/storage/...", "cloud.google.com/go/storage/internal/apiv2", true},
		{"cloud.google.com/go/storage/...", "cloud.google.com/go/bigquery", false},
	} {
		if got := matchPattern(c.pattern, c.pkg); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", c.pattern, c.pkg, got, c.want)
		}
	}
}

// The job's binary must build as it ships in the end-to-end tests, which
// inherit DEV_CGO's GOFLAGS: no package it links may match a pattern.
func TestNoJobPackageBuildsWithoutInlining(t *testing.T) {
	patterns := emulatorOnlyPatterns(t)
	for _, pkg := range deps(t, "../../..", "./cmd/backfill") {
		for _, p := range patterns {
			if matchPattern(p, pkg) {
				t.Errorf("cmd/backfill links %s, which DEV_CGO compiles without inlining (%s): drop the pattern from EMULATOR_GO_PKGS or narrow it", pkg, p)
			}
		}
	}
}

// A pattern that matches none of the sandbox's packages does nothing; it is
// left over from a dependency that went away.
func TestEveryEmulatorPatternMatchesASandboxPackage(t *testing.T) {
	sandbox := deps(t, "../..", "./cmd/sandbox")
	for _, p := range emulatorOnlyPatterns(t) {
		found := false
		for _, pkg := range sandbox {
			if matchPattern(p, pkg) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("EMULATOR_GO_PKGS lists %s, which matches no package of cmd/sandbox", p)
		}
	}
}
