// Package schema is the declarative definition of the sitesec configuration
// hierarchy (SPEC section 1). Every other part of cfgd derives from it: the
// parser (conf) walks it to read both curly-brace and set syntax, the
// renderer orders statements by it, completion and '?' help list its
// children, values are checked against its types, and the conversion to
// pb.Config follows its PB hints. There is no second copy of the hierarchy.
package schema

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sitesec/sitesec/cfgd/secret"
)

// Kind is the YANG-like kind of a schema node.
type Kind uint8

const (
	Container Kind = iota // a keyword with statements below it
	List                  // a keyword followed by a key, one entry per key
	Leaf                  // a keyword with one value, or none (a flag)
	LeafList              // a keyword with one or more values: kw v; or kw [ v1 v2 ];
)

func (k Kind) String() string {
	return [...]string{"container", "list", "leaf", "leaf-list"}[k]
}

// Node is one statement of the hierarchy.
type Node struct {
	Name     string
	Kind     Kind
	Help     string
	Type     *Type // Leaf and LeafList value; List key; nil for a flag leaf
	Children []*Node
	Parent   *Node

	// Syntax.
	Keyless    bool     // list written without its keyword: interfaces ge-0/0/0 { ... }
	Positional bool     // leaf written without its keyword after its parent's: local-gateway 192.0.2.1
	Flat       bool     // written on one line: local-gateway 192.0.2.1 routing-instance vrf1;
	Join       bool     // keyword shares its children's lines: family inet { ... }
	Braces     bool     // list rendered as one block of its entries: source-address { 10.1.12.0/24; }
	KeyWords   []string // list keyed by keyword/value pairs: allowed-proxy-pair local P remote P
	Choice     string   // siblings of one choice exclude each other; setting one removes the others
	Default    string   // the value used when not configured, shown in help
	Secret     bool     // value is key material: rendered with ## SECRET-DATA, never traced
	Max        int      // at most this many values (leaf-list) or entries (list); 0 = no limit
	Ref        string   // the value names an entry of this list ("services ipsec-vpn ike policy"), for completion
	// Inert is why a statement is accepted but not acted on (Junos
	// configurations carry it; sitesec has nothing to do with it):
	// commit check says so in a warning.
	Inert string

	// Conversion to pb.Config (see conf.ToPB).
	PB     string   // field name; "" means Name with '-' as '_'; "-" means not converted
	Inline bool     // no message of its own: children go into the parent's message
	Prefix string   // with Inline: prefix added to the children's field names
	KeyPB  string   // List: field receiving the key; "" means "name"; "-" none
	Enum   string   // flag leaf: sets the enum field PB to this value name
	Hex    bool     // leaf value is hexadecimal, stored decoded as bytes
	Fixed  []string // "field=value" set on this node's message when present

	index int // position among the parent's children, for rendering order
	// field is Name with '_' for '-', made once by build: the conversion
	// asks for it at every statement (issue 15 goal 5).
	field string
}

// Container returns a container node.
func C(name, help string, children ...*Node) *Node {
	return build(&Node{Name: name, Kind: Container, Help: help}, children)
}

// L returns a list node keyed by a value of type key.
func L(name string, key *Type, help string, children ...*Node) *Node {
	return build(&Node{Name: name, Kind: List, Type: key, Help: help}, children)
}

// V returns a leaf with a value of type t.
func V(name string, t *Type, help string) *Node {
	return &Node{Name: name, Kind: Leaf, Type: t, Help: help}
}

// F returns a flag: a leaf with no value.
func F(name, help string) *Node { return &Node{Name: name, Kind: Leaf, Help: help} }

// LL returns a leaf-list of values of type t.
func LL(name string, t *Type, help string) *Node {
	return &Node{Name: name, Kind: LeafList, Type: t, Help: help}
}

func build(n *Node, children []*Node) *Node {
	n.Children = children
	for i, c := range children {
		c.Parent = n
		c.index = i
		c.field = strings.ReplaceAll(c.Name, "-", "_")
	}
	return n
}

// Chainable options used by the definition in tree.go.

func (n *Node) pb(f string) *Node          { n.PB = f; return n }
func (n *Node) inline(prefix string) *Node { n.Inline = true; n.Prefix = prefix; return n }
func (n *Node) keyPB(f string) *Node       { n.KeyPB = f; return n }
func (n *Node) enum(field, value string) *Node {
	n.PB = field
	n.Enum = value
	return n
}
func (n *Node) flat() *Node                { n.Flat = true; return n }
func (n *Node) join() *Node                { n.Join = true; return n }
func (n *Node) braces() *Node              { n.Braces = true; return n }
func (n *Node) inert(why string) *Node     { n.Inert = why; n.PB = "-"; return n }
func (n *Node) keyless() *Node             { n.Keyless = true; return n }
func (n *Node) positional() *Node          { n.Positional = true; return n }
func (n *Node) choice(c string) *Node      { n.Choice = c; return n }
func (n *Node) def(d string) *Node         { n.Default = d; return n }
func (n *Node) secret() *Node              { n.Secret = true; return n }
func (n *Node) hex() *Node                 { n.Hex = true; return n }
func (n *Node) max(m int) *Node            { n.Max = m; return n }
func (n *Node) fixed(kv ...string) *Node   { n.Fixed = kv; return n }
func (n *Node) ref(path string) *Node      { n.Ref = path; return n }
func (n *Node) keyWords(w ...string) *Node { n.KeyWords = w; return n }

// Plain returns the value v of a leaf as the daemons need it: a secret
// written in Junos "$9$" form is decoded; anything else is returned as is.
func (n *Node) Plain(v string) (string, error) {
	if n.Secret && secret.Is(v) {
		p, err := secret.Decode(v)
		if err != nil {
			return "", fmt.Errorf("invalid $9$ secret")
		}
		return p, nil
	}
	return v, nil
}

// CheckValue checks a value of n (a secret is checked decoded).
func (n *Node) CheckValue(v string) error {
	p, err := n.Plain(v)
	if err != nil {
		return err
	}
	return n.Type.Check(p)
}

// Child returns the child statement named name, or nil.
func (n *Node) Child(name string) *Node {
	for _, c := range n.Children {
		if c.Name == name && !c.Keyless {
			return c
		}
	}
	return nil
}

// KeylessList returns the child list written without a keyword, or nil.
func (n *Node) KeylessList() *Node {
	for _, c := range n.Children {
		if c.Keyless {
			return c
		}
	}
	return nil
}

// PositionalLeaf returns the child leaf written without its keyword, or nil.
func (n *Node) PositionalLeaf() *Node {
	for _, c := range n.Children {
		if c.Positional {
			return c
		}
	}
	return nil
}

// Index is the position of n among its parent's children; the renderer
// orders statements by it.
func (n *Node) Index() int { return n.index }

// IsFlag reports whether n is a leaf without a value.
func (n *Node) IsFlag() bool { return n.Kind == Leaf && n.Type == nil }

// Path returns the keywords from the root to n, for messages.
func (n *Node) Path() string {
	var parts []string
	for p := n; p != nil && p.Parent != nil; p = p.Parent {
		parts = append(parts, p.Name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, " ")
}

// Field is the protobuf field name n converts to, before any prefix.
func (n *Node) Field() string {
	if n.PB != "" {
		return n.PB
	}
	if n.field != "" {
		return n.field
	}
	return strings.ReplaceAll(n.Name, "-", "_")
}

// Candidate is one completion: a keyword or a value hint with its help.
type Candidate struct {
	Word string
	Help string
	// Value is true for a value placeholder ("<name>") rather than a keyword.
	Value bool
}

// Candidates lists what may follow at container (or list entry) n,
// filtered by prefix, sorted by word.
func (n *Node) Candidates(prefix string) []Candidate {
	var out []Candidate
	for _, c := range n.Children {
		if c.Keyless || c.Positional {
			if prefix == "" {
				out = append(out, Candidate{Word: c.Type.Help(), Help: c.Help, Value: true})
			}
			continue
		}
		if strings.HasPrefix(c.Name, prefix) {
			h := c.Help
			if c.Default != "" {
				h += " (default " + c.Default + ")"
			}
			out = append(out, Candidate{Word: c.Name, Help: h})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Word < out[j].Word })
	return out
}

// unused is inert for a statement that keeps its place in the snapshot
// (shown, and carried to the daemons) although none of them acts on it.
func (n *Node) unused(why string) *Node {
	n.Inert = why
	return n
}
