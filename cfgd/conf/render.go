package conf

import (
	"strings"

	"github.com/sitesec/sitesec/cfgd/schema"
)

// Render returns n's statements in curly-brace syntax, as `show
// configuration` prints them: statements in schema order, four spaces per
// level, comments above their statement, "inactive:" marks, secrets
// flagged "## SECRET-DATA".
func (n *Node) Render() string {
	var b strings.Builder
	block(&b, n.Children, 0)
	return b.String()
}

// block writes the statements cs at depth. The entries of a list that
// Junos writes in the brace form ("source-address { 10.1.12.0/24; }")
// go together in one block under the list's keyword.
func block(b *strings.Builder, cs []*Node, depth int) {
	for i := 0; i < len(cs); {
		c := cs[i]
		if !c.Schema.Braces {
			c.curly(b, depth, "")
			i++
			continue
		}
		ind := strings.Repeat("    ", depth)
		b.WriteString(ind + quote(c.Schema.Name) + " {\n")
		for ; i < len(cs) && cs[i].Schema == c.Schema; i++ {
			cs[i].curly(b, depth+1, "")
		}
		b.WriteString(ind + "}\n")
	}
}

// RenderNode returns n itself with its statements, as `show <path>` at a
// level prints it.
func (n *Node) RenderNode() string {
	var b strings.Builder
	n.curly(&b, 0, "")
	return b.String()
}

// curly writes n at depth; lead is the keyword of a Join parent that
// shares n's line ("family ").
func (n *Node) curly(b *strings.Builder, depth int, lead string) {
	ind := strings.Repeat("    ", depth)
	if n.Schema.Join && len(n.Children) > 0 && !n.Inactive && len(n.Comments) == 0 {
		for _, c := range n.Children {
			c.curly(b, depth, lead+strings.Join(n.head(), " ")+" ")
		}
		return
	}
	for _, c := range n.Comments {
		for _, l := range strings.Split(c, "\n") {
			b.WriteString(ind + strings.TrimLeft(l, " \t") + "\n")
		}
	}
	b.WriteString(ind)
	if n.Inactive {
		b.WriteString("inactive: ")
	}
	b.WriteString(lead + strings.Join(n.head(), " "))
	s := n.Schema
	if (s.Kind == schema.Container || s.Kind == schema.List) && len(n.Children) > 0 && !s.Flat {
		b.WriteString(" {\n")
		block(b, n.Children, depth+1)
		b.WriteString(ind + "}\n")
		return
	}
	b.WriteString(";")
	if n.secret() {
		b.WriteString(" ## SECRET-DATA")
	}
	b.WriteString("\n")
}

func (n *Node) secret() bool {
	if n.Schema.Secret {
		return true
	}
	for _, c := range n.Children {
		if c.secret() {
			return true
		}
	}
	return false
}

// head is the words of n's line: its own words, plus, for a one-line
// statement, its children inline.
func (n *Node) head() []string {
	var out []string
	ws := n.words()
	if n.Schema.Braces && !n.flatInline() {
		ws = ws[1:] // the keyword heads the block
	}
	for _, w := range ws {
		out = append(out, quote(w))
	}
	if n.Schema.Kind == schema.LeafList {
		if len(n.Values) == 1 {
			return append(out, quote(n.Values[0]))
		}
		out = append(out, "[")
		for _, v := range n.Values {
			out = append(out, quote(v))
		}
		return append(out, "]")
	}
	if n.Schema.Flat || n.flatInline() {
		for _, c := range n.Children {
			out = append(out, c.head()...)
		}
	}
	return out
}

// flatInline is true for a node rendered inside a flat parent.
func (n *Node) flatInline() bool {
	return n.Parent != nil && n.Parent.Schema.Flat
}

// RenderSet returns n's statements as set commands (`| display set`).
// Inactive statements are followed by their deactivate command.
func (n *Node) RenderSet() string {
	var b strings.Builder
	for _, c := range n.Children {
		c.set(&b, n.PathWords())
	}
	return b.String()
}

func (n *Node) set(b *strings.Builder, path []string) {
	own := n.words()
	p := append(append([]string(nil), path...), own...)
	s := n.Schema
	switch {
	case s.Kind == schema.LeafList:
		for _, v := range n.Values {
			line(b, "set", append(p, v))
		}
	case len(n.Children) == 0:
		line(b, "set", p)
	default:
		for _, c := range n.Children {
			c.set(b, p)
		}
	}
	if n.Inactive {
		if s.Kind == schema.Leaf && s.Type != nil && !s.Positional {
			p = p[:len(p)-1] // deactivate names the statement, not its value
		}
		line(b, "deactivate", p)
	}
}

func line(b *strings.Builder, verb string, words []string) {
	b.WriteString(verb)
	for _, w := range words {
		b.WriteString(" " + quote(w))
	}
	b.WriteString("\n")
}
