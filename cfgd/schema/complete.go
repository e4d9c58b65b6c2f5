package schema

import (
	"fmt"
	"strings"
)

// Complete returns what may follow words (a configuration statement
// below the edit path at, without set/delete) for tab completion and '?'
// help. The last word is the partial word being typed ("" after a space).
// An error says why the earlier words do not fit the schema.
func Complete(at, words []string) ([]Candidate, error) {
	return CompleteWith(at, words, nil)
}

// CompleteWith is Complete that also offers, for a value naming another
// statement (Node.Ref), the names configured there: refs returns them for
// a Ref path such as "services ipsec-vpn ike policy" (conf.Names).
func CompleteWith(at, words []string, refs func(ref string) []string) ([]Candidate, error) {
	all := append(append([]string(nil), at...), words...)
	if len(all) == 0 {
		return Root.Candidates(""), nil
	}
	n := Root
	done, partial := all[:len(all)-1], all[len(all)-1]
	inFlat := false
	// expect is non-nil when the next word is a value of that node.
	var expect *Node
	for i := 0; i < len(done); i++ {
		w := done[i]
		if expect != nil {
			if err := expect.Type.Check(w); err != nil {
				return nil, fmt.Errorf("%s: %v", expect.Name, err)
			}
			if expect.Kind == List {
				n = expect
			}
			expect = nil
			continue
		}
		if w == "[" || w == "]" {
			continue
		}
		c := n.Child(w)
		if c == nil {
			if k := n.KeylessList(); k != nil {
				if err := k.Type.Check(w); err != nil {
					return nil, fmt.Errorf("%s: %v", k.Name, err)
				}
				n = k
				continue
			}
			if p := n.PositionalLeaf(); p != nil {
				continue
			}
			return nil, fmt.Errorf("syntax error: '%s' (expecting one of: %s)", w, keywords(n))
		}
		switch c.Kind {
		case Container:
			n = c
		case List:
			if len(c.KeyWords) > 0 {
				n = c
				i += 2 * len(c.KeyWords)
				continue
			}
			expect = c
		case Leaf:
			if c.Type != nil {
				expect = c
			}
			if !n.Flat && c.Type == nil && i != len(done)-1 && !inFlat {
				return nil, fmt.Errorf("syntax error: '%s' takes no more words", c.Name)
			}
		case LeafList:
			expect = c
		}
		inFlat = n.Flat
	}
	if expect != nil {
		out := values(expect, partial)
		if expect.Ref != "" && refs != nil {
			for _, name := range refs(expect.Ref) {
				if strings.HasPrefix(name, partial) {
					out = append(out, Candidate{Word: name, Help: expect.Help})
				}
			}
		}
		return out, nil
	}
	out := n.Candidates(partial)
	return out, nil
}

func values(n *Node, partial string) []Candidate {
	if n.Type.Kind == Enum {
		var out []Candidate
		for _, v := range n.Type.Values {
			if strings.HasPrefix(v, partial) {
				out = append(out, Candidate{Word: v, Help: n.Help})
			}
		}
		return out
	}
	return []Candidate{{Word: n.Type.Help(), Help: n.Help, Value: true}}
}

func keywords(n *Node) string {
	var w []string
	for _, c := range n.Candidates("") {
		w = append(w, c.Word)
	}
	return strings.Join(w, " ")
}
