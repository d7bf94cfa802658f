package manifests_test

import (
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var fromFile = regexp.MustCompile(`--from-file=([A-Za-z0-9._-]+)=`)

// TestDocumentedSecretCommandsCreateTheKeysTheConfigMapReads: every
// password file the ConfigMap points into the mounted Secret must be a
// key that the kubectl create secret commands in the READMEs create, or
// following them gives exit 2.
func TestDocumentedSecretCommandsCreateTheKeysTheConfigMapReads(t *testing.T) {
	m := mustLoad(t)
	var read []string
	for _, cm := range m.configMaps() {
		for key, value := range cm.Data {
			if strings.HasSuffix(key, "_FILE") && strings.HasPrefix(value, "/var/run/secrets/backfill/") {
				read = append(read, path.Base(value))
			}
		}
	}
	if len(read) == 0 {
		t.Fatal("the ConfigMap reads no password file from the Secret")
	}
	for _, doc := range []string{"../README.md", "README.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var created []string
		for _, m := range fromFile.FindAllStringSubmatch(string(text), -1) {
			created = append(created, m[1])
		}
		if len(created) == 0 {
			t.Errorf("%s has no kubectl create secret … --from-file command", doc)
		}
		for _, k := range read {
			if !slices.Contains(created, k) {
				t.Errorf("%s: the ConfigMap reads secret key %s, but the documented command creates %v", doc, k, created)
			}
		}
		for _, k := range created {
			if !slices.Contains(read, k) {
				t.Errorf("%s creates secret key %s, which the ConfigMap never reads", doc, k)
			}
		}
	}
}
