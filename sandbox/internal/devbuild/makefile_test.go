package devbuild

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// devFlags matches the environment DEV_CGO puts in front of a go command.
var devFlags = regexp.MustCompile(`CGO_CFLAGS="[^"]*" CGO_CXXFLAGS="[^"]*" GOFLAGS="[^"]*"`)

// dryRun returns the commands make would run for targets, one per line.
func dryRun(t *testing.T, targets ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	cmd := exec.Command("make", append([]string{"-n", "-C", "../../.."}, targets...)...)
	// A make that runs this test (make test) must not pass its own flags on.
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MAKELEVEL=", "MFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %s: %v\n%s", strings.Join(targets, " "), err, out)
	}
	return strings.Split(string(out), "\n")
}

// emulatorBuilds are the commands, run in the sandbox module, that compile
// packages linking the emulator, each with the text that marks its line in
// make -n's output (the first that matches wins: serve before demo).
var emulatorBuilds = []struct{ name, marker string }{
	{"serve", "./cmd/sandbox serve"},
	{"demo", "./cmd/sandbox"},
	{"bench-bigquery", "./cmd/bench-bigquery"},
	{"test-e2e", "./internal/e2e/"},
	{"vet", "go vet ./..."},
	{"staticcheck", "staticcheck ./..."},
}

// emulatorBuild says which of emulatorBuilds a line of make -n is, or "".
func emulatorBuild(line string) string {
	if !strings.HasPrefix(line, "cd sandbox &&") {
		return ""
	}
	for _, b := range emulatorBuilds {
		if strings.Contains(line, b.marker) {
			return b.name
		}
	}
	return ""
}

func TestEveryEmulatorBuildPassesTheSameCgoFlags(t *testing.T) {
	seen := map[string]string{}
	for _, line := range dryRun(t, "lint", "test-e2e", "demo", "serve", "bench") {
		name := emulatorBuild(line)
		if name == "" {
			continue
		}
		flags := devFlags.FindString(line)
		if flags == "" {
			t.Errorf("%s builds the emulator without DEV_CGO's flags:\n%s", name, line)
		}
		seen[name] = flags
	}
	var first string
	for _, b := range emulatorBuilds {
		flags, ok := seen[b.name]
		if !ok {
			t.Errorf("no %s command in make -n's output; this check no longer recognises it", b.name)
			continue
		}
		if first == "" {
			first = flags
		} else if flags != first {
			t.Errorf("%s builds with %s, the others with %s: the emulator's C++ would compile once per set of flags", b.name, flags, first)
		}
	}
	if !strings.Contains(first, "-O0") {
		t.Errorf("DEV_CGO is %q; the emulator's C++ is meant to build unoptimised", first)
	}
	if !strings.Contains(first, "github.com/goccy/go-zetasql/...=-l") {
		t.Errorf("DEV_CGO is %q; the emulator's Go packages are meant to build without inlining", first)
	}
}

func TestDemoAndServeLinkTheSameSandboxBinary(t *testing.T) {
	lines := dryRun(t, "demo", "serve")
	var runs []string
	for _, line := range lines {
		if strings.Contains(line, "go run") && strings.Contains(line, "./cmd/sandbox") {
			runs = append(runs, line[:strings.Index(line, "./cmd/sandbox")])
		}
	}
	if len(runs) != 2 {
		t.Fatalf("want the go run of demo and of serve, found %d:\n%s", len(runs), strings.Join(lines, "\n"))
	}
	if runs[0] != runs[1] {
		t.Errorf("demo and serve build the sandbox differently, so each links and caches its own:\n%s\n%s", runs[0], runs[1])
	}
}

func TestTheReleaseBuildKeepsGoDefaults(t *testing.T) {
	builds := 0
	for _, line := range dryRun(t, "build") {
		if !strings.Contains(line, "go build") {
			continue
		}
		builds++
		if strings.Contains(line, "CGO_CFLAGS") || strings.Contains(line, "CGO_CXXFLAGS") || strings.Contains(line, "GOFLAGS") {
			t.Errorf("the release build passes development C flags:\n%s", line)
		}
	}
	if builds == 0 {
		t.Error("no go build command in make -n build's output; this check no longer sees the release build")
	}
}
