package cli

import (
	"strings"
	"testing"
)

func words(t *testing.T, s *Shell, line string) string {
	t.Helper()
	var w []string
	for _, c := range s.candidates(line) {
		w = append(w, c.Word)
	}
	return strings.Join(w, " ")
}

func TestOperationalCompletion(t *testing.T) {
	s := &Shell{}
	cases := []struct{ line, want string }{
		{"", "clear configure exit monitor quit request restart show"},
		{"sh", "show"},
		{"show ", "configuration security services system"},
		{"show system ", "commit processes"},
		{"show services ipsec-vpn ike security-associations ", "<peer-address> brief detail"},
		{"show services ipsec-vpn ike security-associations detail ", "<peer-address> brief detail"},
		{"restart k", "kmd"},
		{"restart n", "nats"},
		{"restart kmd ", "gracefully immediately"},
		{"show nonsense ", ""},
	}
	for _, c := range cases {
		if got := words(t, s, c.line); got != c.want {
			t.Errorf("%q: got %q, want %q", c.line, got, c.want)
		}
	}
}

func TestConfigCompletion(t *testing.T) {
	s := &Shell{configMode: true}
	if got := words(t, s, "com"); got != "commit" {
		t.Errorf("com: %q", got)
	}
	if got := words(t, s, "commit "); !strings.Contains(got, "check") || !strings.Contains(got, "confirmed") {
		t.Errorf("commit: %q", got)
	}
	got := words(t, s, "set services ")
	if !strings.Contains(got, "ipsec-vpn") || !strings.Contains(got, "service-set") {
		t.Errorf("set services: %q", got)
	}
	s.editPath = "[edit services]"
	if got := words(t, s, "set ipsec-vpn est"); got != "establish-tunnels" {
		t.Errorf("relative to edit path: %q", got)
	}
	if got := words(t, s, "run show sys"); got != "system" {
		t.Errorf("run: %q", got)
	}
}

func TestCompleteLine(t *testing.T) {
	s := &Shell{}
	cases := []struct{ in, want string }{
		{"show sys", "show system "},
		{"show s", "show s"},
		{"show se", "show se"},
		{"show secu", "show security "},
		{"show system pro", "show system processes "},
	}
	for _, c := range cases {
		if nl, _ := s.completeLine(c.in); nl != c.want {
			t.Errorf("%q: got %q, want %q", c.in, nl, c.want)
		}
	}
}

func TestPipes(t *testing.T) {
	w, p, err := splitPipes(`show system processes | match "kmd|fwdd" | count`)
	if err != nil || strings.Join(w, " ") != "show system processes" {
		t.Fatalf("%v %v", w, err)
	}
	if got := p.apply([]string{"kmd 1", "fwdd 2", "cfgd 3"}); len(got) != 1 || got[0] != "Count: 2 lines" {
		t.Errorf("match|count: %v", got)
	}
	for _, bad := range []string{"show x | display yaml", "show x | match", "show x |", "show x | match (", "show x | last 0", "show x | frob"} {
		if _, _, err := splitPipes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, p, _ = splitPipes("show x | except b | last 2")
	if got := p.apply([]string{"a", "b", "c", "d"}); strings.Join(got, ",") != "c,d" {
		t.Errorf("got %v", got)
	}
	_, p, _ = splitPipes("show x | find c")
	if got := p.apply([]string{"a", "b", "c", "d"}); strings.Join(got, ",") != "c,d" {
		t.Errorf("find: %v", got)
	}
}

func TestRoute(t *testing.T) {
	cases := map[string]string{
		"show system processes": "sitesecd",
		"restart kmd":           "sitesecd",
		"show services ipsec-vpn ike security-associations detail": "kmd",
		"show services ipsec-vpn ipsec statistics":                 "fwdd",
		"clear services ipsec-vpn ipsec security-associations":     "kmd",
		"request security pki generate-key-pair certificate-id a":  "pkid",
		"show configuration": "cfgd",
	}
	for line, want := range cases {
		if got, ok := route(fields(line)); !ok || got != want {
			t.Errorf("%q -> %q, want %q", line, got, want)
		}
	}
	if _, ok := route(fields("show systemx processes")); ok {
		t.Error("prefix of a word matched")
	}
}

func TestSplitSecret(t *testing.T) {
	w, sec := splitSecret(fields("request security pki local-certificate enroll ca-profile ca certificate-id c challenge-password s3cret subject CN=x"))
	if sec != "s3cret" || strings.Contains(strings.Join(w, " "), "s3cret") || !strings.Contains(strings.Join(w, " "), "challenge-password subject CN=x") {
		t.Fatalf("%v %q", w, sec)
	}
	if w, sec := splitSecret([]string{"show", "x"}); sec != "" || len(w) != 2 {
		t.Fatal(w, sec)
	}
}

// TestOperatorCommands: the IPsec commands a Junos engineer types, with
// the pipes they add, reach a daemon (no "syntax error"), and the pipes
// parse. The same list ran through bin/cli against a router (issue 12
// sweep); each daemon's own tests check its answer.
func TestOperatorCommands(t *testing.T) {
	for line, want := range map[string]string{
		"show services ipsec-vpn ike security-associations":                            "kmd",
		"show services ipsec-vpn ike security-associations brief":                      "kmd",
		"show services ipsec-vpn ike security-associations detail | display xml":       "kmd",
		"show services ipsec-vpn ike security-associations 192.0.2.2 | display json":   "kmd",
		"show services ipsec-vpn ike security-associations | count":                    "kmd",
		"show services ipsec-vpn ike statistics | display xml":                         "kmd",
		"clear services ipsec-vpn ike security-associations 192.0.2.2":                 "kmd",
		"clear services ipsec-vpn ike statistics":                                      "kmd",
		"show services ipsec-vpn ipsec security-associations detail | match Service":   "fwdd",
		"show services ipsec-vpn ipsec security-associations extensive service-set s1": "fwdd",
		"show services ipsec-vpn ipsec statistics detail | display json":               "fwdd",
		"clear services ipsec-vpn ipsec security-associations service-set s1":          "kmd",
		"clear services ipsec-vpn ipsec statistics":                                    "fwdd",
		"show services service-sets summary | display xml":                             "fwdd",
		"show services service-sets summary interface ms-1/2/0 | count":                "fwdd",
		"show services ipsec-vpn certificates | display json":                          "pkid",
		"clear services ipsec-vpn certificates all":                                    "pkid",
	} {
		words, _, err := splitPipes(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if got, ok := route(words); !ok || got != want {
			t.Errorf("%q -> %q %v, want %q", line, got, ok, want)
		}
	}
	// Completion offers the new words.
	sh := &Shell{}
	for line, word := range map[string]string{"show services service-sets ": "summary", "clear services ipsec-vpn certificates ": "all"} {
		found := false
		for _, c := range sh.candidates(line) {
			found = found || c.Word == word
		}
		if !found {
			t.Errorf("%q does not offer %q", line, word)
		}
	}
}
