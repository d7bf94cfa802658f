package manifests_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

// exitTableJobs are the Jobs whose podFailurePolicy the README's exit-code
// table documents: the column header names the manifest.
var exitTableJobs = map[string]string{
	"k8s/base":             "base/job.yaml",
	"k8s/overlays/sharded": "overlays/sharded/job-indexed.yaml",
}

// TestReadmeExitCodesMatchThePodFailurePolicies: for every exit code, the
// README's exit table says what each Job does with it, as its
// podFailurePolicy does: FailJob, FailIndex, or retried (no rule).
func TestReadmeExitCodesMatchThePodFailurePolicies(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	header, rows := exitTable(t, string(readme))
	m := mustLoad(t)
	for manifest, file := range exitTableJobs {
		var policy *batchv1.PodFailurePolicy
		for _, o := range m.objects {
			if j, ok := o.obj.(*batchv1.Job); ok && o.file == file {
				policy = j.Spec.PodFailurePolicy
			}
		}
		if policy == nil {
			t.Errorf("%s: no Job with a podFailurePolicy", file)
			continue
		}
		var actual []string
		for _, code := range documentedAndPolicyCodes(rows, policy)[1:] { // after 0
			actual = append(actual, fmt.Sprintf("%d: %s", code, actionWord(exitAction(policy, code))))
		}
		col := slices.IndexFunc(header, func(h string) bool { return strings.Contains(h, "`"+manifest+"`") })
		if col < 0 {
			t.Errorf("README.md's exit-code table has no column for `%s`, whose podFailurePolicy (%s) gives %s", manifest, file, strings.Join(actual, ", "))
			continue
		}
		for _, code := range documentedAndPolicyCodes(rows, policy) {
			row, ok := rows[code]
			if !ok {
				t.Errorf("%s's podFailurePolicy names exit code %d, which README.md's exit table lacks", file, code)
				continue
			}
			want := actionWord(exitAction(policy, code))
			if code == 0 {
				want = "–" // success: no policy applies
			}
			if got := firstWord(row[col]); got != want {
				t.Errorf("exit %d: README.md says %q for `%s`, its podFailurePolicy (%s) says %s", code, row[col], manifest, file, want)
			}
		}
	}
}

// exitTable parses the table under "## Exit codes": its header cells and
// its rows by exit code.
func exitTable(t *testing.T, readme string) ([]string, map[int32][]string) {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Exit codes\n")
	if !ok {
		t.Fatal(`README.md has no "## Exit codes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var header []string
	rows := map[int32][]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			if header != nil {
				break // the end of the first table
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case header == nil:
			header = cells
		case strings.HasPrefix(cells[0], "---"):
		default:
			code, err := strconv.Atoi(cells[0])
			if err != nil || len(cells) != len(header) {
				t.Fatalf("README.md's exit table: row %q has no exit code or %d cells for %d columns", line, len(cells), len(header))
			}
			rows[int32(code)] = cells
		}
	}
	if len(rows) == 0 {
		t.Fatal("README.md's exit-code section has no table")
	}
	return header, rows
}

// documentedAndPolicyCodes are the codes the table documents and those
// the policy's exit-code rules name, sorted.
func documentedAndPolicyCodes(rows map[int32][]string, p *batchv1.PodFailurePolicy) []int32 {
	var codes []int32
	for code := range rows {
		codes = append(codes, code)
	}
	for _, r := range p.Rules {
		if r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
			codes = append(codes, r.OnExitCodes.Values...)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// actionWord is how the README's table words an action: the action's
// name, or "retried" when no rule matches (backoffLimit applies).
func actionWord(a batchv1.PodFailurePolicyAction) string {
	if a == "" {
		return "retried"
	}
	return string(a)
}

// firstWord is a cell's first word without Markdown's backticks.
func firstWord(cell string) string {
	f := strings.Fields(strings.ReplaceAll(cell, "`", ""))
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], ",.;:")
}
