package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJuniperExamples loads each configuration written as Juniper's
// published examples write it (testdata/juniper) with load override and
// commits it unchanged.
func TestJuniperExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/juniper/*.*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, _ := newServer(t)
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			mode := "override"
			if strings.HasSuffix(f, ".set") {
				mode = "set"
			}
			r := loadFile(t, s, "a", mode, abs, 0)
			if len(r.Errors) > 0 {
				t.Fatalf("load %s: %v\n%s", mode, r.Errors, strings.Join(r.Lines, "\n"))
			}
			r = run(t, s, "a", "commit")
			if len(r.Errors) > 0 || !strings.Contains(strings.Join(r.Lines, "\n"), "commit complete") {
				t.Fatalf("commit: %v\n%s", r.Errors, strings.Join(r.Lines, "\n"))
			}
			// What show configuration prints loads back to the same configuration.
			shown := text(run(t, s, "a", "show"))
			if shown == "" {
				t.Fatal("show printed nothing")
			}
			back := filepath.Join(t.TempDir(), "back.conf")
			if err := os.WriteFile(back, []byte(shown), 0o600); err != nil {
				t.Fatal(err)
			}
			if r := loadFile(t, s, "b", "override", back, 0); len(r.Errors) > 0 {
				t.Fatalf("reload of show output: %v\n%s", r.Errors, shown)
			}
			if got := text(run(t, s, "b", "show")); got != shown {
				t.Errorf("show after reload differs:\n%s\n---\n%s", got, shown)
			}
		})
	}
	if n < 5 {
		t.Fatalf("%d examples", n)
	}
}
