package conf

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// getScan is Get without the child index: the reference find must agree
// with.
func getScan(n *Node, words ...string) *Node { return n.get(words, (*Node).scan) }

// paths lists the words that name every node under n.
func paths(n *Node, at []string, out *[][]string) {
	for _, c := range n.Children {
		w := append([]string(nil), at...)
		s := c.Schema
		switch {
		case s.Keyless || s.Positional:
			w = append(w, c.Key)
		case c.Key != "":
			w = append(w, s.Name, c.Key)
		default:
			w = append(w, s.Name)
		}
		*out = append(*out, w)
		paths(c, w, out)
	}
}

// TestIndexAgreesWithScan checks that the child index finds what a scan
// finds, through the edits that change children: set, delete, deactivate,
// insert and load replace.
func TestIndexAgreesWithScan(t *testing.T) {
	cfg := New()
	if err := ParseSet(cfg, "large", large(60)); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	edits := []string{
		"delete services service-set ss%d",
		"deactivate services ipsec-vpn rule r%d",
		"activate services ipsec-vpn rule r%d",
		"set services service-set ss%d ipsec-vpn-rules rX",
		"delete services ipsec-vpn ike policy pol%d",
		"set services ipsec-vpn rule r%d term t0 then remote-gateway 192.0.2.9",
		"insert services ipsec-vpn rule r%d term t0 before term t1",
		"set services ipsec-vpn ike policy pol%d description x",
	}
	check := func(step int) {
		var ps [][]string
		paths(cfg, nil, &ps)
		for _, p := range ps {
			if got, want := cfg.Get(p...), getScan(cfg, p...); got != want {
				t.Fatalf("step %d: Get(%q) = %p, scan finds %p", step, p, got, want)
			}
		}
		for _, p := range [][]string{{"services", "service-set", "nope"}, {"services", "ipsec-vpn", "rule"}, {"interfaces", "ms-1/2/0", "unit", "99999"}} {
			if got, want := cfg.Get(p...), getScan(cfg, p...); got != want {
				t.Fatalf("step %d: Get(%q) = %p, scan finds %p", step, p, got, want)
			}
		}
	}
	check(0)
	for step := 1; step <= 200; step++ {
		e := edits[r.IntN(len(edits))]
		line := fmt.Sprintf(e, r.IntN(60))
		_ = ParseSet(cfg, "edit", line) // some edits fail (already deleted): fine
		check(step)
	}
	text := cfg.Render()
	again, err := Parse("again", text)
	if err != nil {
		t.Fatal(err)
	}
	Merge(cfg, again, true)
	check(-1)
}
