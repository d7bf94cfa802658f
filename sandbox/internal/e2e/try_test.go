package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// TestServeCommandsWorkWithTheInstalledTools runs the kcat and curl
// commands `make serve` prints, as printed, after a run: kcat is the one
// `make test` installs (Debian's, without Avro support), and every record
// it reads decodes to a user and its minimum order.
func TestServeCommandsWorkWithTheInstalledTools(t *testing.T) {
	s := startStack(t, stack.Options{Users: 200, Partitions: 3})
	r := runJob(t, s)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	want := s.Expected()
	ran := 0
	for _, c := range s.TryCommands("unused.yaml") {
		if !strings.HasPrefix(c.Shell, "kcat ") && !strings.HasPrefix(c.Shell, "curl ") {
			continue
		}
		ran++
		cmd := exec.Command("sh", "-c", c.Shell)
		cmd.Dir = root
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: %v\nstdout: %s\nstderr: %s", c.Shell, err, tailOf(stdout.String()), tailOf(stderr.String()))
			continue
		}
		if !strings.HasPrefix(c.Shell, "kcat ") {
			if !strings.Contains(strings.ToUpper(stdout.String()), "TABLE_MIN_ORDER") && !strings.Contains(stdout.String(), "ACCOUNT_ID") {
				t.Errorf("%s: unexpected answer: %s", c.Shell, tailOf(stdout.String()))
			}
			continue
		}
		records := 0
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var rec struct {
				Partition   int32           `json:"partition"`
				KeyHex      string          `json:"key_hex"`
				KeySchemaID *uint32         `json:"key_schema_id"`
				Key         json.RawMessage `json:"key"`
				Value       json.RawMessage `json:"value"`
				Error       string          `json:"error"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Error != "" || rec.KeySchemaID == nil {
				t.Fatalf("%s: line %q: %v", c.Shell, line, err)
			}
			records++
			user, err := strconv.ParseInt(string(rec.Key), 10, 64)
			if err != nil || !strings.HasPrefix(rec.KeyHex, fmt.Sprintf("00%08x", *rec.KeySchemaID)) {
				t.Fatalf("line %q: the key is not a wire-format Avro long", line)
			}
			if m, ok := want[user]; !ok || !strings.Contains(string(rec.Value), strconv.FormatInt(m, 10)) {
				t.Fatalf("line %q: user %d's minimum order is %d", line, user, m)
			}
		}
		if int64(records) != r.report.RecordsAcked {
			t.Errorf("%s: %d records, the job acknowledged %d", c.Shell, records, r.report.RecordsAcked)
		}
	}
	if ran != 3 {
		t.Errorf("ran %d kcat and curl commands, want 3", ran)
	}
}

func tailOf(s string) string {
	if len(s) > 1500 {
		return "…" + s[len(s)-1500:]
	}
	return s
}
