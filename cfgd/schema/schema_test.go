package schema

import (
	"strings"
	"testing"
)

func TestTypes(t *testing.T) {
	cases := []struct {
		ty   *Type
		v    string
		want string // "" for valid, else a substring of the error
	}{
		{Range(1025, 65535), "4565", ""},
		{Range(1025, 65535), "80", "Value 80 is not within range (1025..65535)"},
		{Range(1025, 65535), "x", "invalid numeric value"},
		{Name(63), strings.Repeat("a", 63), ""},
		{Name(63), strings.Repeat("a", 64), "Must be a string of 63 characters or less"},
		{Name(63), "a b", "must not contain"},
		{TAddr4, "192.0.2.1", ""},
		{TAddr4, "2001:db8::1", "invalid ip address"},
		{TAddr, "2001:db8::1", ""},
		{TPrefix, "10.0.0.0/8", ""},
		{TPrefix, "10.0.0.1", ""},
		{TPrefix, "10.0.0.0/40", "invalid prefix length"},
		{TPrefix, "x/8", "invalid prefix"},
		{TIFD, "ge-0/0/0", ""},
		{TIFD, "lo0", ""},
		{TIFD, "eth0", "invalid interface name"},
		{TIFL, "ms-1/2/0.1", ""},
		{TIFL, "ms-1/2/0", "expecting name.unit"},
		{TSize, "10m", ""},
		{TSize, "10q", "invalid size"},
		{OneOf("a", "b"), "c", "expecting one of a, b"},
		{TStar, "*", ""},
		{TStar, "x", "only '*'"},
	}
	for _, tc := range cases {
		err := tc.ty.Check(tc.v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.v, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want %q", tc.v, err, tc.want)
		}
	}
	if n, _ := ParseSize("2k"); n != 2048 {
		t.Errorf("2k = %d", n)
	}
}

func TestComplete(t *testing.T) {
	cases := []struct {
		at, words []string
		want      []string // words that must be offered
		none      []string // words that must not
		err       string
	}{
		{nil, []string{""}, []string{"services", "interfaces", "security", "system"}, nil, ""},
		{nil, []string{"ser"}, []string{"services"}, []string{"system"}, ""},
		{nil, []string{"services", "service-set", "ss1", "ipsec-vpn-options", "loc"}, []string{"local-gateway"}, []string{"tunnel-mtu"}, ""},
		{[]string{"services", "service-set", "ss1"}, []string{"ipsec-vpn-options", "tunnel-mtu", ""}, []string{"<256..9192>"}, nil, ""},
		{nil, []string{"services", "ipsec-vpn", "establish-tunnels", "on"}, []string{"on-traffic"}, []string{"immediately"}, ""},
		{nil, []string{"interfaces", ""}, []string{"<interface-name>"}, nil, ""},
		{nil, []string{"interfaces", "ge-0/0/0", "unit", "0", ""}, []string{"family", "service-domain"}, nil, ""},
		{nil, []string{"services", "ipsec-vpn", "bogus", ""}, nil, nil, "syntax error: 'bogus'"},
		{nil, []string{"services", "service-set", "ss1", "ipsec-vpn-options", "local-gateway", "192.0.2.1", ""}, []string{"routing-instance", "gw-interface"}, nil, ""},
	}
	for _, tc := range cases {
		got, err := Complete(tc.at, tc.words)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.words, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.words, err)
			continue
		}
		have := map[string]bool{}
		for _, c := range got {
			have[c.Word] = true
		}
		for _, w := range tc.want {
			if !have[w] {
				t.Errorf("%v: %q not offered in %v", tc.words, w, got)
			}
		}
		for _, w := range tc.none {
			if have[w] {
				t.Errorf("%v: %q offered", tc.words, w)
			}
		}
	}
}

func TestSchemaShape(t *testing.T) {
	var visit func(n *Node)
	visit = func(n *Node) {
		keyless, positional := 0, 0
		for i, c := range n.Children {
			if c.Parent != n || c.Index() != i {
				t.Errorf("%s: bad parent or index", c.Path())
			}
			if c.Help == "" {
				t.Errorf("%s: no help text", c.Path())
			}
			if (c.Kind == List || c.Kind == LeafList) && c.Type == nil && len(c.KeyWords) == 0 {
				t.Errorf("%s: list without a key type", c.Path())
			}
			if c.Keyless {
				keyless++
			}
			if c.Positional {
				positional++
			}
			visit(c)
		}
		if keyless > 1 || positional > 1 || (keyless > 0 && positional > 0) {
			t.Errorf("%s: ambiguous children", n.Path())
		}
	}
	visit(Root)
}
