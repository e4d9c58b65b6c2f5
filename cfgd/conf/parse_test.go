package conf

import (
	"errors"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/cfgd/schema"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string // substrings of each error, in order
	}{
		{"unknown statement", "services { foo; }", []string{"syntax error at line 1: [edit services] 'foo': unexpected 'foo'"}},
		{"missing semicolon", "system {\n  host-name a\n}", []string{"syntax error at line 3: [edit system] missing ';' or '{' after 'a'"}},
		{"missing brace", "system {\n host-name a;\n", []string{"syntax error at line 3: [edit system] missing '}'"}},
		{"extra brace", "system { host-name a; } }", []string{"unexpected '}'"}},
		{"range", "services { service-set s { ipsec-vpn-options { tunnel-mtu 100; } } }",
			[]string{"error at line 1: [edit services service-set s ipsec-vpn-options] 'tunnel-mtu 100': Value 100 is not within range (256..9192)"}},
		{"name too long", "services { service-set " + strings.Repeat("x", 64) + "; }", []string{"Must be a string of 63 characters or less"}},
		{"bad address", "services { service-set s { ipsec-vpn-options { local-gateway 300.1.1.1; } } }", []string{"invalid ip address: '300.1.1.1'"}},
		{"bad prefix", "routing-options { static { route 10.0.0.0/33 next-hop 1.1.1.1; } }", []string{"invalid prefix length in '10.0.0.0/33'"}},
		{"bad enum", "services { ipsec-vpn { establish-tunnels sometimes; } }", []string{"invalid value 'sometimes': expecting one of immediately, on-traffic, responder-only"}},
		{"bad interface", "interfaces { eth0 { unit 0; } }", []string{"invalid interface name: 'eth0'"}},
		{"ca name", "security { pki { ca-profile a.b; } }", []string{"must not contain"}},
		{"missing value", "system { host-name; }", []string{"missing value for 'host-name'"}},
		{"block on a leaf", "system { host-name a { } }", []string{"unexpected '{'"}},
		{"unterminated string", "system { host-name \"abc; }", []string{"unterminated quoted string"}},
		{"unterminated comment", "/* abc", []string{"unterminated comment"}},
		{"two errors reported", "system { foo; }\nservices { bar; }", []string{"line 1", "line 2"}},
		{"hex key", "services { ipsec-vpn { ike { policy p { pre-shared-key hexadecimal 0xabc; } } } }", []string{"invalid hexadecimal key"}},
		{"client star only", "access { profile p { client bob; } }", []string{"only '*' is supported"}},
		{"too many source addresses", "services { ipsec-vpn { rule r { term t { from { source-address 1.1.1.0/24; source-address 2.2.2.0/24; } } } } }", []string{"at most 1 source-address"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("", tc.text)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want errors, got %v", err)
			}
			if len(errs) < len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tc.want), err)
			}
			all := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in\n%s", w, all)
				}
			}
		})
	}
}

func TestSecretsNotEchoed(t *testing.T) {
	for _, text := range []string{
		"services { ipsec-vpn { ike { policy p { pre-shared-key hexadecimal SECRETSECRET; } } } }",
		"services { ipsec-vpn { ike { policy p { pre-shared-key ascii-text " + strings.Repeat("SECRET", 50) + "; } } } }",
	} {
		_, err := Parse("", text)
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error %v", err)
		}
	}
}

func TestErrorHasFile(t *testing.T) {
	_, err := Parse("/tmp/x.conf", "\n\nsystem { bogus 1; }")
	if err == nil || !strings.HasPrefix(err.Error(), "/tmp/x.conf: syntax error at line 3: ") {
		t.Fatalf("got %v", err)
	}
	var errs Errors
	errors.As(err, &errs)
	if errs[0].Pos.Col != 10 {
		t.Errorf("column %d", errs[0].Pos.Col)
	}
}

func TestSetCommands(t *testing.T) {
	cfg := New()
	steps := []struct {
		words []string
		at    []string
		want  string // RenderSet after the step, or "error: substring"
	}{
		{[]string{"set", "system", "host-name", "gw"}, nil, "set system host-name gw\n"},
		{[]string{"set", "host-name", "gw2"}, []string{"system"}, "set system host-name gw2\n"},
		{[]string{"set", "services", "ipsec-vpn", "ike", "policy", "p", "proposals", "[", "a", "b", "]"}, nil,
			"set system host-name gw2\nset services ipsec-vpn ike policy p proposals a\nset services ipsec-vpn ike policy p proposals b\n"},
		{[]string{"delete", "services", "ipsec-vpn", "ike", "policy", "p", "proposals", "a"}, nil,
			"set system host-name gw2\nset services ipsec-vpn ike policy p proposals b\n"},
		{[]string{"deactivate", "services", "ipsec-vpn", "ike", "policy", "p"}, nil,
			"set system host-name gw2\nset services ipsec-vpn ike policy p proposals b\ndeactivate services ipsec-vpn ike policy p\n"},
		{[]string{"activate", "services", "ipsec-vpn", "ike", "policy", "p"}, nil,
			"set system host-name gw2\nset services ipsec-vpn ike policy p proposals b\n"},
		{[]string{"delete", "services", "ipsec-vpn", "ike", "policy"}, nil, "set system host-name gw2\nset services ipsec-vpn ike\n"},
		{[]string{"delete", "services", "ipsec-vpn", "ike", "policy", "zz"}, nil, "error: statement not found"},
		{[]string{"set", "services", "ipsec-vpn", "ike", "policy", "p", "pre-shared-key", "ascii-text", "k1"}, nil, ""},
		{[]string{"set", "services", "ipsec-vpn", "ike", "policy", "p", "pre-shared-key", "hexadecimal", "abcd"}, nil,
			"set system host-name gw2\nset services ipsec-vpn ike policy p pre-shared-key hexadecimal abcd\n"},
		{[]string{"set", "services", "service-set", "s", "ipsec-vpn-options", "local-gateway", "192.0.2.1", "routing-instance", "vr"}, nil, ""},
		{[]string{"delete", "services", "service-set", "s", "ipsec-vpn-options", "local-gateway", "routing-instance"}, nil, ""},
		{[]string{"set", "services", "service-set", "s", "ipsec-vpn-options", "tunnel-mtu", "1400", "extra"}, nil, "error: unexpected 'extra'"},
		{[]string{"set"}, nil, "error: missing statement"},
		{[]string{"frob"}, nil, "error: expecting set"},
		{[]string{"delete"}, nil, ""},
	}
	for i, s := range steps {
		err := Run(cfg, s.at, s.words)
		if strings.HasPrefix(s.want, "error: ") {
			if err == nil || !strings.Contains(err.Error(), s.want[7:]) {
				t.Fatalf("step %d %v: want %q, got %v", i, s.words, s.want, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %v: %v", i, s.words, err)
		}
		if s.want != "" {
			if got := cfg.RenderSet(); got != s.want {
				t.Fatalf("step %d %v:\n%s\nwant:\n%s", i, s.words, got, s.want)
			}
		}
		if i == 11 {
			if got := cfg.Get("services", "service-set", "s", "ipsec-vpn-options", "local-gateway").Statement(); got != "local-gateway" {
				t.Fatalf("statement %q", got)
			}
			if cfg.Get("services", "service-set", "s", "ipsec-vpn-options", "local-gateway").Value("routing-instance") != "" {
				t.Fatal("routing-instance not deleted")
			}
		}
	}
	if cfg.RenderSet() != "" {
		t.Fatalf("delete at top left %q", cfg.RenderSet())
	}
}

func TestInsert(t *testing.T) {
	cfg := New()
	for _, l := range []string{
		"set services ipsec-vpn rule r term t1",
		"set services ipsec-vpn rule r term t2",
		"set services ipsec-vpn rule r term t3",
		"set services ipsec-vpn ike policy p proposals [ a b c ]",
		"insert services ipsec-vpn rule r term t3 before term t1",
		"insert services ipsec-vpn rule r term t1 after t2",
		"insert services ipsec-vpn ike policy p proposals a after c",
	} {
		if err := ParseSet(cfg, "", l); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	want := "set services ipsec-vpn rule r term t3\nset services ipsec-vpn rule r term t2\nset services ipsec-vpn rule r term t1\n" +
		"set services ipsec-vpn ike policy p proposals b\nset services ipsec-vpn ike policy p proposals c\nset services ipsec-vpn ike policy p proposals a\n"
	if got := cfg.RenderSet(); got != want {
		t.Fatalf("got\n%s", got)
	}
	if err := ParseSet(cfg, "", "insert services ipsec-vpn rule r term t3 before term zz"); err == nil {
		t.Fatal("missing reference accepted")
	}
	if got := cfg.RenderSet(); got != want {
		t.Fatalf("failed insert changed the order:\n%s", got)
	}
}

func TestAnnotateAndRelative(t *testing.T) {
	cfg := New()
	if err := Run(cfg, []string{"services"}, []string{"set", "ipsec-vpn", "disable-natt"}); err != nil {
		t.Fatal(err)
	}
	if err := Run(cfg, []string{"services"}, []string{"annotate", "ipsec-vpn", "global knobs"}); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Render(); got != "services {\n    /* global knobs */\n    ipsec-vpn {\n        disable-natt;\n    }\n}\n" {
		t.Fatalf("annotate:\n%s", got)
	}
	out, err := LoadAt(cfg, []string{"services", "ipsec-vpn"}, "merge", "t", "establish-tunnels immediately;\nbogus;")
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("relative load error: %v", err)
	}
	out, err = LoadAt(cfg, []string{"services", "ipsec-vpn"}, "merge", "t", "establish-tunnels immediately;")
	if err != nil || out.Get("services", "ipsec-vpn").Value("establish-tunnels") != "immediately" {
		t.Fatalf("relative load: %v", err)
	}
	out, err = LoadAt(cfg, []string{"services", "ipsec-vpn"}, "set", "t", "set no-ipsec-tunnel-in-traceroute")
	if err != nil || !out.Get("services", "ipsec-vpn").Has("no-ipsec-tunnel-in-traceroute") {
		t.Fatalf("relative load set: %v", err)
	}
}

func TestResolve(t *testing.T) {
	cfg := New()
	segs, err := Resolve(cfg, []string{"services", "service-set", "ss1", "ipsec-vpn-options"})
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 3 || strings.Join(segs[1], " ") != "service-set ss1" {
		t.Fatalf("segs %v", segs)
	}
	if len(cfg.Children) != 0 {
		t.Fatal("Resolve changed the configuration")
	}
	if _, err := Resolve(cfg, []string{"system", "host-name", "x"}); err == nil {
		t.Fatal("edit of a leaf accepted")
	}
}

func TestLoadModes(t *testing.T) {
	base, err := Parse("", "system { host-name a; }\nservices { ipsec-vpn { establish-tunnels immediately; disable-natt; } }")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ mode, text, want string }{
		{"merge", "services { ipsec-vpn { establish-tunnels on-traffic; } }",
			"set system host-name a\nset services ipsec-vpn establish-tunnels on-traffic\nset services ipsec-vpn disable-natt\n"},
		{"override", "system { host-name b; }", "set system host-name b\n"},
		{"replace", "services { replace: ipsec-vpn { establish-tunnels on-traffic; } }",
			"set system host-name a\nset services ipsec-vpn establish-tunnels on-traffic\n"},
		{"set", "delete services\nset system host-name c", "set system host-name c\n"},
		{"merge", "set system host-name d", "set system host-name d\nset services ipsec-vpn establish-tunnels immediately\nset services ipsec-vpn disable-natt\n"},
	}
	for _, tc := range cases {
		out, err := Load(base, tc.mode, "terminal", tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		if got := out.RenderSet(); got != tc.want {
			t.Errorf("%s %q:\n%s\nwant\n%s", tc.mode, tc.text, got, tc.want)
		}
	}
	if base.RenderSet() != "set system host-name a\nset services ipsec-vpn establish-tunnels immediately\nset services ipsec-vpn disable-natt\n" {
		t.Fatal("Load changed its input")
	}
	if _, err := Load(base, "merge", "t", "system { bogus; }"); err == nil {
		t.Fatal("bad text loaded")
	}
}

func TestDiff(t *testing.T) {
	old, _ := load(t, "seed.conf")
	n := old.Clone()
	for _, l := range []string{
		"set services service-set ss1 ipsec-vpn-options tunnel-mtu 1400",
		"delete services ipsec-vpn traceoptions",
		"set interfaces ge-0/0/2 unit 0 family inet address 10.2.2.1/24",
		"deactivate services ipsec-vpn establish-tunnels",
	} {
		if err := ParseSet(n, "", l); err != nil {
			t.Fatal(err)
		}
	}
	want := `[edit interfaces]
+   ge-0/0/2 {
+       unit 0 {
+           family inet {
+               address 10.2.2.1/24;
+           }
+       }
+   }
[edit services service-set ss1 ipsec-vpn-options]
-   tunnel-mtu 1500;
+   tunnel-mtu 1400;
[edit services ipsec-vpn]
-   establish-tunnels immediately;
+   inactive: establish-tunnels immediately;
-   traceoptions {
-       file ipsec.log;
-       flag all;
-   }
`
	if got := Diff(old, n); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestEverySchemaStatement sets each leaf of the schema, alone, with a
// valid value, and checks it renders, parses back and converts to pb.
func TestEverySchemaStatement(t *testing.T) {
	var visit func(s *schema.Node, path []string)
	count := 0
	visit = func(s *schema.Node, path []string) {
		words := append([]string(nil), path...)
		switch {
		case s.Keyless:
			words = append(words, sample(s.Type))
		case s.Positional:
			words = append(words, sample(s.Type))
		case s.Kind == schema.List && len(s.KeyWords) > 0:
			words = append(words, s.Name)
			for _, k := range s.KeyWords {
				words = append(words, k, "10.0.0.0/8")
			}
		case s.Kind == schema.List:
			words = append(words, s.Name, sample(s.Type))
		case s.Kind == schema.Leaf && s.Type != nil, s.Kind == schema.LeafList:
			words = append(words, s.Name, sample(s.Type))
		case s.Name != "":
			words = append(words, s.Name)
		}
		if len(s.Children) == 0 && s.Name != "" {
			count++
			cfg := New()
			if err := Run(cfg, nil, append([]string{"set"}, words...)); err != nil {
				t.Errorf("set %v: %v", words, err)
				return
			}
			again, err := Parse("", cfg.Render())
			if err != nil || !Equal(cfg, again) {
				t.Errorf("%v: round trip: %v\n%s", words, err, cfg.Render())
			}
			if _, err := ToPB(cfg); err != nil {
				t.Errorf("%v: %v", words, err)
			}
		}
		for _, c := range s.Children {
			visit(c, words)
		}
	}
	visit(schema.Root, nil)
	if count < 200 {
		t.Fatalf("only %d statements visited", count)
	}
}

func sample(ty *schema.Type) string {
	switch ty.Kind {
	case schema.Uint:
		return "300"[:0] + itoa(ty.Min)
	case schema.Enum:
		return ty.Values[len(ty.Values)-1]
	case schema.IPv4, schema.IPAddr:
		return "192.0.2.1"
	case schema.Prefix:
		return "10.1.0.0/16"
	case schema.IFD:
		return "ms-1/2/0"
	case schema.IFL:
		return "ms-1/2/0.1"
	case schema.Size:
		return "2m"
	}
	if ty.Exact != "" {
		return ty.Exact
	}
	return "abcd"
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestReferenceCompletion(t *testing.T) {
	cfg, _ := load(t, "seed.conf")
	refs := func(ref string) []string { return Names(cfg, ref) }
	got, err := schema.CompleteWith(nil, []string{"services", "ipsec-vpn", "rule", "r9", "term", "t", "then", "dynamic", "ike-policy", "ike"}, refs)
	if err != nil || len(got) != 2 || got[1].Word != "ike-policy1" {
		t.Fatalf("ike-policy: %v %v", got, err)
	}
	got, _ = schema.CompleteWith(nil, []string{"services", "service-set", "s", "ipsec-vpn-options", "local-gateway", "192.0.2.1", "routing-instance", ""}, refs)
	if len(got) != 2 || got[1].Word != "vrf1" {
		t.Fatalf("routing-instance: %v", got)
	}
	got, _ = schema.CompleteWith(nil, []string{"services", "service-set", "s", "ipsec-vpn-options", "trusted-ca", ""}, refs)
	if len(got) != 3 {
		t.Fatalf("trusted-ca: %v", got)
	}
}

// Juniper's published examples write lists in the brace form; both forms
// load, and the configuration renders the way Junos renders it.
func TestBraceFormList(t *testing.T) {
	brace := `services { ipsec-vpn { rule r { term t { from {
    source-address { 10.1.12.0/24; }
    destination-address {
        10.1.15.0/24;
    }
} } match-direction output; } } }`
	plain := `services { ipsec-vpn { rule r { term t { from { source-address 10.1.12.0/24; destination-address 10.1.15.0/24; } } match-direction output; } } }`
	a, err := Parse("", brace)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("", plain)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(a, b) {
		t.Fatalf("brace form differs:\n%s\n%s", a.Render(), b.Render())
	}
	want := "                from {\n                    source-address {\n                        10.1.12.0/24;\n                    }\n                    destination-address {\n                        10.1.15.0/24;\n                    }\n                }\n"
	if !strings.Contains(a.Render(), want) {
		t.Errorf("render:\n%s", a.Render())
	}
	if !strings.Contains(a.RenderSet(), "set services ipsec-vpn rule r term t from source-address 10.1.12.0/24\n") {
		t.Errorf("set:\n%s", a.RenderSet())
	}
	// The rendering loads back to the same tree.
	c, err := Parse("", a.Render())
	if err != nil || !Equal(a, c) {
		t.Fatalf("round trip: %v\n%s", err, a.Render())
	}
	// Entries of a keyed list with children take the brace form too.
	d, err := Parse("", "services { ipsec-vpn { rule { r1 { match-direction input; } r2; } } }")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Get("services", "ipsec-vpn").All("rule")); got != 2 {
		t.Errorf("%d rules:\n%s", got, d.Render())
	}
	// Errors inside the block point at the entry and quote it once.
	_, err = Parse("f", "services { ipsec-vpn { rule r { term t { from {\n source-address {\n 10.1.12.0/24;\n 10.1.13.0/24;\n }\n} } } } }")
	if err == nil || !strings.Contains(err.Error(), "line 4: [edit services ipsec-vpn rule r term t from] 'source-address 10.1.13.0/24': at most 1 source-address may be configured") {
		t.Errorf("got %v", err)
	}
}

// Several statements of one level, or of levels walked earlier, on one set
// line, as Junos accepts them.
func TestSetSeveralStatements(t *testing.T) {
	cfg := New()
	err := ParseSet(cfg, "", `set services ipsec-vpn rule r term t then dead-peer-detection interval 20 threshold 5
set services ipsec-vpn rule r term t then manual direction bidirectional protocol esp spi 256 authentication algorithm hmac-sha1-96 key ascii-text 12345678901234567890 encryption algorithm 3des-cbc key ascii-text 123456789012345678901234
set security pki ca-profile P revocation-check crl url http://ca/crl refresh-interval 24
set services ipsec-vpn ike policy p proposals [ a b ] mode main version 2`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"set services ipsec-vpn rule r term t then manual direction bidirectional protocol esp",
		"set services ipsec-vpn rule r term t then manual direction bidirectional spi 256",
		"set services ipsec-vpn rule r term t then manual direction bidirectional authentication algorithm hmac-sha1-96",
		"set services ipsec-vpn rule r term t then manual direction bidirectional encryption algorithm 3des-cbc",
		"set services ipsec-vpn rule r term t then dead-peer-detection interval 20",
		"set services ipsec-vpn rule r term t then dead-peer-detection threshold 5",
		"set security pki ca-profile P revocation-check crl url http://ca/crl",
		"set security pki ca-profile P revocation-check crl refresh-interval 24",
		"set services ipsec-vpn ike policy p mode main",
		"set services ipsec-vpn ike policy p version 2",
		"set services ipsec-vpn ike policy p proposals b",
	}
	got := cfg.RenderSet()
	for _, w := range want {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("missing %q in\n%s", w, got)
		}
	}
	// A word no walked level knows is still an error, naming the leaf before it.
	err = ParseSet(cfg, "", "set services ipsec-vpn rule r term t then dead-peer-detection interval 20 bogus 5")
	if err == nil || !strings.Contains(err.Error(), "'bogus': unexpected 'bogus' after 'interval'") {
		t.Errorf("got %v", err)
	}
}

// A set with a bad value leaves no empty parent behind.
func TestSetBadValueLeavesNothing(t *testing.T) {
	cfg := New()
	before := cfg.Render()
	err := ParseSet(cfg, "", "set services service-set s ipsec-vpn-options tunnel-mtu 100")
	if err == nil {
		t.Fatal("accepted")
	}
	if got := cfg.Render(); got != before {
		t.Errorf("left behind:\n%s", got)
	}
	if err := ParseSet(cfg, "", "set services service-set s ipsec-vpn-options tunnel-mtu 1400"); err != nil {
		t.Fatal(err)
	}
	// A failed line takes back what it created, but not what was there.
	if err := ParseSet(cfg, "", "set services service-set s ipsec-vpn-options udp-encapsulate dest-port 4"); err == nil {
		t.Fatal("accepted")
	}
	if got := cfg.RenderSet(); got != "set services service-set s ipsec-vpn-options tunnel-mtu 1400\n" {
		t.Errorf("got\n%s", got)
	}
}

// TestValueErrorQuotesWhatWasTyped: a bad value's error quotes the
// statement as it was written, once, at the line of the value: a
// positional value under its parent's keyword and level (not the schema's
// name for it, 'address'), a key-word list entry with its key words.
func TestValueErrorQuotesWhatWasTyped(t *testing.T) {
	cases := []struct {
		name, text string
		path, stmt string
		line       int32
	}{
		{"positional", "services {\n service-set s {\n  ipsec-vpn-options {\n   local-gateway 300.1.1.1 routing-instance x;\n  }\n }\n}",
			"[edit services service-set s ipsec-vpn-options]", "local-gateway 300.1.1.1", 4},
		{"positional trace file", "services {\n ipsec-vpn {\n  traceoptions {\n   file \"\";\n  }\n }\n}",
			"[edit services ipsec-vpn traceoptions]", `file ""`, 4},
		{"brace list", "services {\n ipsec-vpn {\n  rule r {\n   term t {\n    from {\n     source-address {\n      10.1.1.0/33;\n     }\n    }\n   }\n  }\n }\n}",
			"[edit services ipsec-vpn rule r term t from]", "source-address 10.1.1.0/33", 7},
		{"key words", "access {\n profile p {\n  client * {\n   ike {\n    allowed-proxy-pair local 10.0.0.0/24 remote 10.1.0.0/33;\n   }\n  }\n }\n}",
			"[edit access profile p client * ike]", "allowed-proxy-pair local 10.0.0.0/24 remote 10.1.0.0/33", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.conf", tc.text)
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			e := errs[0]
			if e.Path != tc.path || e.Stmt != tc.stmt || e.Pos.Line != tc.line {
				t.Errorf("got path %q stmt %q line %d, want %q %q %d", e.Path, e.Stmt, e.Pos.Line, tc.path, tc.stmt, tc.line)
			}
		})
	}
	// The same through set: the quoted statement names local-gateway once.
	err := Run(New(), nil, strings.Fields("set services service-set s ipsec-vpn-options local-gateway routing-instance x 300.1.1.1"))
	if err == nil || !strings.Contains(err.Error(), "[edit services service-set s ipsec-vpn-options] 'local-gateway 300.1.1.1'") ||
		strings.Count(err.Error(), "local-gateway") != 1 {
		t.Errorf("set: %v", err)
	}
}
