package config

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration reference must name every setting.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Reference() {
		if !strings.Contains(string(readme), "`"+d.Name+"`") {
			t.Errorf("README.md does not document %s", d.Name)
		}
	}
}
