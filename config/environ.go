package config

import (
	"fmt"
	"strings"
)

// UnknownEnv returns a warning for every BACKFILL_* variable in environ
// ("KEY=value" entries, as os.Environ gives them) that names no setting,
// with the closest known name: a typo in a ConfigMap is otherwise ignored.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{"BACKFILL_CONFIG": true}
	var names []string
	for _, n := range Names() {
		known[Env(n)] = true
		names = append(names, Env(n))
	}
	for n := range removed {
		known[Env(n)] = true // Load refuses these with its own message
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "BACKFILL_") || known[k] {
			continue
		}
		out = append(out, fmt.Sprintf("environment variable %s is not a setting and is ignored (did you mean %s?)", k, closest(k, names)))
	}
	return out
}

// closest returns the name with the smallest edit distance to s.
func closest(s string, names []string) string {
	best, bestD := "", -1
	for _, n := range names {
		if d := editDistance(s, n); bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
