package config

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpListsEverySettingOnceWithItsDefault: --help prints one usage
// header, every setting with its env name and default, and no removed
// setting.
func TestHelpListsEverySettingOnceWithItsDefault(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, env(nil), &out); err != ErrHelp {
		t.Fatalf("got %v, want ErrHelp", err)
	}
	help := out.String()
	if n := strings.Count(help, "Usage:"); n != 1 {
		t.Errorf("the usage header appears %d times:\n%s", n, help)
	}
	for name := range removed {
		if strings.Contains(help, flagName(name)) {
			t.Errorf("help lists the removed setting %s:\n%s", name, help)
		}
	}
	for _, want := range []string{"--kafka-compression", "BACKFILL_KAFKA_COMPRESSION", "(default lz4)", "(default 6h0m0s)", "(default sample)", "(default 1)"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
}
