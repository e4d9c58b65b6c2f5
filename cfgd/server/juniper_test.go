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

// TestLoadErrorLine: an error in a loaded file names the file, the line
// of the bad value (also when the file came in pieces) and quotes the
// statement once, as it was written.
func TestLoadErrorLine(t *testing.T) {
	dir := t.TempDir()
	curly := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(curly, []byte("system {\n    host-name gw;\n}\nservices {\n    service-set s {\n        ipsec-vpn-options {\n            local-gateway 300.1.1.1;\n        }\n    }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set := filepath.Join(dir, "bad.set")
	if err := os.WriteFile(set, []byte("set system host-name gw\n\nset services ipsec-vpn rule r term t from source-address 10.1.1.0/33\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, mode string
		piece      int
		path, stmt string
		line       uint32
	}{
		{curly, "override", 0, "[edit services service-set s ipsec-vpn-options]", "local-gateway 300.1.1.1", 7},
		{curly, "override", 40, "[edit services service-set s ipsec-vpn-options]", "local-gateway 300.1.1.1", 7},
		{set, "set", 0, "[edit services ipsec-vpn rule r term t from]", "source-address 10.1.1.0/33", 3},
	} {
		s, _ := newServer(t)
		r := loadFile(t, s, "a", c.mode, c.file, c.piece)
		if len(r.Errors) != 1 {
			t.Fatalf("%s (pieces of %d): errors %v", c.file, c.piece, r.Errors)
		}
		e := r.Errors[0]
		if e.Path != c.path || e.Statement != c.stmt || e.Line != c.line || e.File != c.file {
			t.Errorf("%s (pieces of %d): got %q %q %s line %d", c.file, c.piece, e.Path, e.Statement, e.File, e.Line)
		}
	}
}
