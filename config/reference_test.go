package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateSettings = flag.Bool("update-settings", false, "rewrite docs/settings.md from Reference()")

// settingsPage is the path of the generated settings reference.
const settingsPage = "../docs/settings.md"

// settingsPreamble opens docs/settings.md, above the generated table.
const settingsPreamble = `# Settings

<!-- Generated from config.Reference() by ` + "`go test ./config -run TestSettingsPage -update-settings`" + `; do not edit by hand. -->

Precedence: flags > environment (` + "`BACKFILL_*`" + `) > YAML file (` + "`--config` / `BACKFILL_CONFIG`" + `) > defaults.
An unknown key in the YAML file is an error; an unknown ` + "`BACKFILL_*`" + ` variable is logged as a warning
naming the closest setting (a typo in a ConfigMap). In an Indexed Job, ` + "`shard.index`" + ` comes from
` + "`JOB_COMPLETION_INDEX`" + `, and a ` + "`shard.index`" + ` set elsewhere that disagrees with it is an error.
Every setting below is a YAML key (` + "`kafka.brokers` is `kafka: {brokers: …}`" + `), a flag and an environment
variable. List settings take comma-separated values or repeated flags. Secrets (` + "`*password`" + `) can come
from env or, better, from ` + "`*_file`" + ` settings; credentials in URLs are moved out of them; no secret is
ever logged or reported. Errors name the setting and where its value came from, and all problems are
reported at once. ` + "`backfill help`" + ` prints the same list.

| setting | flag / env | default | meaning |
|---|---|---|---|
`

// renderSettings is docs/settings.md as Reference() describes the settings.
func renderSettings() []byte {
	var b bytes.Buffer
	b.WriteString(settingsPreamble)
	for _, d := range Reference() {
		def := d.Default
		if def == "" {
			def = "–"
		}
		usage := strings.ReplaceAll(d.Usage, "|", `\|`)
		fmt.Fprintf(&b, "| `%s` | `%s`<br>`%s` | %s | %s |\n", d.Name, d.Flag, d.Env, def, usage)
	}
	return b.Bytes()
}

// The settings page is Reference() rendered, whole: every name, flag,
// variable, default and description, so none is kept by hand twice.
func TestSettingsPage(t *testing.T) {
	want := renderSettings()
	if *updateSettings {
		if err := os.WriteFile(settingsPage, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(settingsPage)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./config -run TestSettingsPage -update-settings)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s line %d differs from Reference():\n have %s\n want %s\nregenerate: go test ./config -run TestSettingsPage -update-settings", settingsPage, i+1, g, w)
			}
		}
	}
}

// The README links the settings page.
func TestReadmeLinksTheSettingsPage(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(docs/settings.md)") {
		t.Error("README.md does not link docs/settings.md")
	}
}
