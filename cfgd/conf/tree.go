// Package conf is the configuration language of cfgd: a lexer whose tokens
// carry line and column, a parser for the Junos curly-brace syntax and for
// set/delete lines, the configuration tree, rendering in both syntaxes,
// `show | compare` diffs and the conversion to pb.Config. All of it is
// driven by the hierarchy in package schema.
package conf

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/sitesec/sitesec/cfgd/schema"
	"github.com/sitesec/sitesec/cfgd/secret"
)

// Node is one statement of a configuration tree.
type Node struct {
	Schema   *schema.Node
	Key      string   // list entry key, or leaf value ("" for a container or a flag)
	Values   []string // leaf-list values, in order
	Children []*Node  // ordered by schema position; list entries in insertion order
	Parent   *Node
	Inactive bool
	// replace marks a "replace:" statement of load replace (beside
	// Inactive: a Node is 144 bytes, one size class under 160).
	replace  bool
	Comments []string // comment lines written before the statement
	Pos      Pos      // where the statement was last set
	// idx finds children by name and key without a scan; see index.
	idx *childIndex
}

// childIndex maps a node's children by the words that find them (Get) and
// by schema and key (child). It is built on first use once a node has
// indexMin children, dropped by every change made through Node's methods,
// and also rebuilt when Children was reassigned or changed length behind
// its back (first and n record the slice it was built from). A node with
// 10,000 service sets is then searched in constant time, not a scan per
// statement (issue 15: parse and check were quadratic).
type childIndex struct {
	first    *Node
	n        int
	byWords  map[string]*Node
	bySchema map[schemaKey]*Node
	// shared holds the words keys two children answer to; find scans
	// for those, so the first in order wins as without the index.
	shared map[string]bool
}

type schemaKey struct {
	s   *schema.Node
	key string
}

// indexMin is the number of children from which a node is indexed; below
// it a scan is as fast.
const indexMin = 16

// wordsKey is the index key of a child found by Get's words: its keyword
// and, for a list entry, its key; or its key alone for a keyless list or a
// positional leaf.
func wordsKey(c *Node) string {
	s := c.Schema
	switch {
	case s.Keyless || s.Positional:
		return "\x00" + c.Key
	case s.Kind == schema.List:
		return s.Name + "\x00" + c.Key
	}
	return s.Name
}

// index returns n's child index, or nil when n has too few children.
func (n *Node) index() *childIndex {
	if len(n.Children) < indexMin {
		return nil
	}
	if x := n.idx; x != nil && x.n == len(n.Children) && x.first == n.Children[0] {
		return x
	}
	x := &childIndex{first: n.Children[0], n: len(n.Children),
		byWords: make(map[string]*Node, len(n.Children)), bySchema: make(map[schemaKey]*Node, len(n.Children))}
	for _, c := range n.Children {
		x.put(c)
	}
	n.idx = x
	return x
}

// put indexes c unless an earlier child has its words or schema and key.
func (x *childIndex) put(c *Node) {
	k := schemaKey{c.Schema, ""}
	if c.Schema.Kind == schema.List {
		k.key = c.Key
	}
	if _, dup := x.bySchema[k]; !dup {
		x.bySchema[k] = c
	}
	w := wordsKey(c)
	if x.byWords[w] == nil {
		x.byWords[w] = c
	} else if x.byWords[w] != c {
		if x.shared == nil {
			x.shared = map[string]bool{}
		}
		x.shared[w] = true
	}
}

// changed drops n's child index after a change to its children.
func (n *Node) changed() { n.idx = nil }

// New returns an empty configuration.
func New() *Node { return &Node{Schema: schema.Root} }

// Error is one syntax or value error, with its position and hierarchy path.
type Error struct {
	Pos    Pos
	Path   string // "[edit services service-set ss1]"
	Stmt   string // the offending statement or word
	Msg    string
	Syntax bool // a syntax error rather than a bad value
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.File != "" {
		b.WriteString(e.Pos.File + ": ")
	}
	if e.Syntax {
		b.WriteString("syntax error")
	} else {
		b.WriteString("error")
	}
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, " at line %d", e.Pos.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + " ")
	}
	if e.Stmt != "" {
		b.WriteString("'" + e.Stmt + "': ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is a list of errors reported together.
type Errors []*Error

func (es Errors) Error() string {
	var s []string
	for _, e := range es {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

// Name is the word that introduces n: its keyword, or its key for a
// keyless list entry.
func (n *Node) words() []string {
	s := n.Schema
	switch {
	case s.Kind == schema.List && s.Keyless:
		return []string{n.Key}
	case s.Kind == schema.List && len(s.KeyWords) > 0:
		return append([]string{s.Name}, strings.Fields(n.Key)...)
	case s.Kind == schema.List:
		return []string{s.Name, n.Key}
	case s.Kind == schema.Leaf && s.Positional:
		return []string{n.Key}
	case s.Kind == schema.Leaf && s.Type != nil:
		return []string{s.Name, n.Key}
	}
	return []string{s.Name}
}

// PathWords returns the words from the root to n, as in a set command.
func (n *Node) PathWords() []string {
	var segs [][]string
	for p := n; p != nil && p.Parent != nil; p = p.Parent {
		segs = append(segs, p.words())
	}
	var out []string
	for i := len(segs) - 1; i >= 0; i-- {
		out = append(out, segs[i]...)
	}
	return out
}

// EditPath is the Junos banner for n: "[edit services service-set ss1]".
func (n *Node) EditPath() string {
	w := n.PathWords()
	for i := range w {
		w[i] = quote(w[i])
	}
	if len(w) == 0 {
		return "[edit]"
	}
	return "[edit " + strings.Join(w, " ") + "]"
}

// Get follows keywords and keys (as in PathWords) from n, ignoring inactive
// statements; it returns nil when any is missing.
func (n *Node) Get(words ...string) *Node { return n.get(words, (*Node).find) }

// get is Get with the step that finds a child (find, or scan in tests).
func (n *Node) get(words []string, find func(*Node, []string, int) *Node) *Node {
	if n == nil {
		return nil
	}
	cur := n
	for i := 0; i < len(words); i++ {
		next := find(cur, words, i)
		if next == nil {
			return nil
		}
		if next.Schema.Kind == schema.List && !next.Schema.Keyless {
			i++
		}
		cur = next
	}
	return cur
}

// find returns the first active child that words[i] names (with
// words[i+1], its key, for a list entry).
func (n *Node) find(words []string, i int) *Node {
	if x := n.index(); x != nil {
		var hit *Node
		hits := 0
		inactive := false
		for _, k := range [3]string{"\x00" + words[i], words[i], ""} {
			if k == "" {
				if i+1 >= len(words) {
					break
				}
				k = words[i] + "\x00" + words[i+1]
			}
			if c := x.byWords[k]; c != nil {
				hit = c
				hits++
				inactive = inactive || c.Inactive || x.shared[k]
			}
		}
		if hits <= 1 && !inactive {
			return hit
		}
		// Two statements answer to the words, or an inactive one does:
		// the scan decides, as without the index.
	}
	return n.scan(words, i)
}

// scan is find without the index.
func (n *Node) scan(words []string, i int) *Node {
	for _, c := range n.Children {
		if c.Inactive {
			continue
		}
		s := c.Schema
		switch {
		case s.Keyless || s.Positional:
			if c.Key == words[i] {
				return c
			}
		case s.Name != words[i]:
		case s.Kind != schema.List:
			return c
		case i+1 < len(words) && c.Key == words[i+1]:
			return c
		}
	}
	return nil
}

// All returns the active children of n with keyword name (every entry of a
// list).
func (n *Node) All(name string) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	for _, c := range n.Children {
		if c.Schema.Name == name && !c.Inactive {
			out = append(out, c)
		}
	}
	return out
}

// Has reports whether n has an active child with keyword name.
func (n *Node) Has(name string) bool { return n.first(name) != nil }

// Value returns the value of the active leaf name below n, or "".
func (n *Node) Value(name string) string {
	if c := n.first(name); c != nil {
		return c.Key
	}
	return ""
}

// first is All's first node, without building the list (Has and Value
// are asked of every statement the checks visit).
func (n *Node) first(name string) *Node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Schema.Name == name && !c.Inactive {
			return c
		}
	}
	return nil
}

// child returns the child for schema s and key, or nil.
func (n *Node) child(s *schema.Node, key string) *Node {
	if x := n.index(); x != nil {
		if s.Kind != schema.List {
			key = ""
		}
		return x.bySchema[schemaKey{s, key}]
	}
	for _, c := range n.Children {
		if c.Schema == s && (s.Kind != schema.List || c.Key == key) {
			return c
		}
	}
	return nil
}

// add inserts c in schema order: after the last child whose schema comes
// at or before it.
func (n *Node) add(c *Node) {
	c.Parent = n
	i := len(n.Children)
	for i > 0 && n.Children[i-1].Schema.Index() > c.Schema.Index() {
		i--
	}
	x := n.idx
	keep := x != nil && x.n == len(n.Children) && len(n.Children) > 0 && x.first == n.Children[0]
	n.Children = slices.Insert(n.Children, i, c)
	if !keep {
		n.changed()
		return
	}
	// Keep the index: one more child (c is new: child found no other with
	// its schema and key).
	x.put(c)
	x.n, x.first = len(n.Children), n.Children[0]
}

// remove deletes child c.
func (n *Node) remove(c *Node) {
	n.Children = slices.DeleteFunc(n.Children, func(x *Node) bool { return x == c })
	n.changed()
}

// ensure returns the child for s and key, creating it. Creating a member of
// a choice removes the other members (YANG choice semantics).
func (n *Node) ensure(s *schema.Node, key string, pos Pos) *Node {
	c, _ := n.ensureNew(s, key, pos)
	return c
}

// ensureNew is ensure, also reporting whether the child is new.
func (n *Node) ensureNew(s *schema.Node, key string, pos Pos) (*Node, bool) {
	if c := n.child(s, key); c != nil {
		if s.Kind == schema.Leaf {
			c.Key = key
			c.Pos = pos
		}
		return c, false
	}
	if s.Choice != "" {
		n.Children = slices.DeleteFunc(n.Children, func(x *Node) bool {
			return x.Schema.Choice == s.Choice && x.Schema != s && x.Schema.Parent == s.Parent
		})
		n.changed()
	}
	c := &Node{Schema: s, Key: key, Pos: pos}
	n.add(c)
	return c, true
}

// Clone returns a deep copy of n (detached from its parent).
func (n *Node) Clone() *Node {
	c := &Node{Schema: n.Schema, Key: n.Key, Values: slices.Clone(n.Values), Inactive: n.Inactive,
		Comments: slices.Clone(n.Comments), Pos: n.Pos}
	for _, ch := range n.Children {
		cc := ch.Clone()
		cc.Parent = c
		c.Children = append(c.Children, cc)
	}
	return c
}

// Equal reports whether a and b hold the same configuration (statements,
// values, order, inactive marks and comments; positions are ignored).
func Equal(a, b *Node) bool {
	if a.Schema != b.Schema || a.Key != b.Key || a.Inactive != b.Inactive ||
		!slices.Equal(a.Values, b.Values) || !slices.Equal(a.Comments, b.Comments) ||
		len(a.Children) != len(b.Children) {
		return false
	}
	for i := range a.Children {
		if !Equal(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}

// Walk calls f for n and every node below it, depth first.
func (n *Node) Walk(f func(*Node)) {
	f(n)
	for _, c := range n.Children {
		c.Walk(f)
	}
}

// Statement is n's own line without its children, as Junos quotes a
// statement under the path in an error: "local-gateway 192.0.2.1",
// "ipsec-vpn-rules r1", "tunnel-mtu 1400".
func (n *Node) Statement() string {
	var w []string
	for _, x := range n.words() {
		w = append(w, quote(x))
	}
	if n.Schema.Kind == schema.LeafList {
		for _, v := range n.Values {
			w = append(w, quote(v))
		}
	}
	return strings.Join(w, " ")
}

// Masked returns a copy of n in which every secret value typed in clear
// (pre-shared keys, manual SA keys, passwords) is shown in Junos "$9$"
// form, as `show configuration` prints it. The encoding of a value is
// always the same, so masked configurations compare and diff as the
// originals do; loading the text back decodes it.
func (n *Node) Masked() *Node {
	c := n.Clone()
	c.Parent = n.Parent
	c.Walk(func(x *Node) {
		if x.Schema.Secret && x.Key != "" && !secret.Is(x.Key) {
			x.Key = maskSecret(x.Key)
		}
	})
	return c
}

// maskSecret is v in "$9$" form, the same for the same v.
func maskSecret(v string) string {
	seed := sha256.Sum256([]byte(v))
	if s, err := secret.Encode(v, bytes.NewReader(seed[:])); err == nil {
		return s
	}
	return v
}

// Names returns the keys of the list at ref ("services ipsec-vpn ike
// policy") in cfg: what schema.CompleteWith offers for a reference.
func Names(cfg *Node, ref string) []string {
	f := strings.Fields(ref)
	if len(f) == 0 {
		return nil
	}
	var out []string
	if len(f) == 1 { // a keyless list: routing-instances NAME
		if n := cfg.Get(f[0]); n != nil {
			for _, c := range n.Children {
				if c.Schema.Keyless && !c.Inactive {
					out = append(out, c.Key)
				}
			}
		}
		return out
	}
	for _, e := range cfg.Get(f[:len(f)-1]...).All(f[len(f)-1]) {
		out = append(out, e.Key)
	}
	return out
}
