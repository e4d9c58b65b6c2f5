package conf

import (
	"bufio"
	"strings"

	"github.com/sitesec/sitesec/cfgd/schema"
	"github.com/sitesec/sitesec/cfgd/secret"
)

// Render returns n's statements in curly-brace syntax, as `show
// configuration` prints them: statements in schema order, four spaces per
// level, comments above their statement, "inactive:" marks, secrets
// flagged "## SECRET-DATA".
func (n *Node) Render() string {
	var b strings.Builder
	b.Grow(n.renderSize())
	r := renderer{b: &b, words: new([]string)}
	r.block(n.Children, 0)
	return b.String()
}

// RenderMasked is n.Masked().Render() without the copy (a
// 10,000-service-set configuration was copied whole only to be printed;
// issue 15 goal 5).
func (n *Node) RenderMasked() string {
	var b strings.Builder
	b.Grow(n.renderSize())
	r := renderer{b: &b, mask: true, words: new([]string)}
	r.block(n.Children, 0)
	return b.String()
}

// WriteMasked appends RenderMasked's text to b: what the commit database
// writes for each revision, without a string of several MB in between.
func (n *Node) WriteMasked(b *bufio.Writer) {
	r := renderer{b: b, mask: true, words: new([]string)}
	r.block(n.Children, 0)
}

// renderSize guesses the length of n's text, a little over it: a buffer
// grown by doubling up to megabytes copies and clears several times over,
// and one sized far over the text costs as much in clearing fresh memory
// (64 bytes a statement was three times the text of the 10,000-service-set
// configuration of issue 15 goal 5).
func (n *Node) renderSize() int {
	size := n.textSize(0)
	return size + size/16 + 64
}

// textSize is an upper bound of the text of n's statements at depth (one
// line each, its words, braces and comments).
func (n *Node) textSize(depth int) int {
	indent := 4 * depth
	if n.Schema.Flat {
		indent = 0 // the children share n's line
	}
	size := 0
	for _, c := range n.Children {
		s := c.Schema
		line := indent + len(s.Name) + len(c.Key) + 6 // spaces, quotes, "{" or ";", newline
		if s.Secret {
			line += 3*len(c.Key) + 16 + len(" ## SECRET-DATA") // "$9$" form: up to four characters per one, and a salt
		}
		if c.Inactive {
			line += len("inactive: ")
		}
		for _, v := range c.Values {
			line += len(v) + 3
		}
		for _, m := range c.Comments {
			line += len(m) + indent + 2
		}
		if len(c.Children) > 0 {
			line += indent + 2 + c.textSize(depth+1)
			if s.Join || s.Braces {
				// Its words lead each child's line, or head a block.
				line += (len(s.Name) + len(c.Key) + 2) * len(c.Children)
			}
		}
		size += line
	}
	return size
}

// renderer writes curly-brace syntax into b; with mask, secrets typed in
// clear are written in "$9$" form (Masked).
type renderer struct {
	b    textWriter
	mask bool
	// words is the buffer of one line's words, reused from line to line
	// (a fresh slice per statement was 6 % of a 10,000-service-set
	// commit's allocations); nil for a renderer made without it.
	words *[]string
}

// textWriter is strings.Builder or bufio.Writer.
type textWriter interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}

const indents = "                                                                "

func (r renderer) indent(depth int) {
	for n := 4 * depth; n > 0; {
		k := min(n, len(indents))
		r.b.WriteString(indents[:k])
		n -= k
	}
}

// block writes the statements cs at depth. The entries of a list that
// Junos writes in the brace form ("source-address { 10.1.12.0/24; }")
// go together in one block under the list's keyword.
func (r renderer) block(cs []*Node, depth int) {
	for i := 0; i < len(cs); {
		c := cs[i]
		if !c.Schema.Braces {
			r.curly(c, depth, nil)
			i++
			continue
		}
		r.indent(depth)
		r.b.WriteString(quote(c.Schema.Name))
		r.b.WriteString(" {\n")
		for ; i < len(cs) && cs[i].Schema == c.Schema; i++ {
			r.curly(cs[i], depth+1, nil)
		}
		r.indent(depth)
		r.b.WriteString("}\n")
	}
}

// RenderNode returns n itself with its statements, as `show <path>` at a
// level prints it.
func (n *Node) RenderNode() string {
	var b strings.Builder
	renderer{b: &b}.curly(n, 0, nil)
	return b.String()
}

// curly writes n at depth; lead is the words of Join parents that share
// n's line ("family").
func (r renderer) curly(n *Node, depth int, lead []string) {
	if n.Schema.Join && len(n.Children) > 0 && !n.Inactive && len(n.Comments) == 0 {
		lead = n.headTo(lead, r.mask)
		for _, c := range n.Children {
			r.curly(c, depth, lead[:len(lead):len(lead)])
		}
		return
	}
	for _, c := range n.Comments {
		for _, l := range strings.Split(c, "\n") {
			r.indent(depth)
			r.b.WriteString(strings.TrimLeft(l, " \t"))
			r.b.WriteByte('\n')
		}
	}
	r.indent(depth)
	if n.Inactive {
		r.b.WriteString("inactive: ")
	}
	var ws []string
	if r.words != nil {
		ws = n.headTo(append((*r.words)[:0], lead...), r.mask)
		*r.words = ws[:0] // written out before block reuses it
	} else {
		ws = n.headTo(lead, r.mask)
	}
	for i, w := range ws {
		if i > 0 {
			r.b.WriteByte(' ')
		}
		r.b.WriteString(w)
	}
	s := n.Schema
	if (s.Kind == schema.Container || s.Kind == schema.List) && len(n.Children) > 0 && !s.Flat {
		r.b.WriteString(" {\n")
		r.block(n.Children, depth+1)
		r.indent(depth)
		r.b.WriteString("}\n")
		return
	}
	r.b.WriteByte(';')
	if n.secret() {
		r.b.WriteString(" ## SECRET-DATA")
	}
	r.b.WriteByte('\n')
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
func (n *Node) head() []string { return n.headTo(nil, false) }

// headTo appends head's words to out; with mask, a secret typed in clear
// in its "$9$" form.
func (n *Node) headTo(out []string, mask bool) []string {
	s := n.Schema
	// n.words() without its allocation, for the common shapes.
	var ws []string
	var two [2]string
	switch {
	case s.Kind == schema.List && s.Keyless:
		two[0] = n.Key
		ws = two[:1]
	case s.Kind == schema.List && len(s.KeyWords) > 0:
		ws = n.words()
	case s.Kind == schema.List:
		two[0], two[1] = s.Name, n.Key
		ws = two[:2]
	case s.Kind == schema.Leaf && s.Type != nil && !s.Positional:
		two[0], two[1] = s.Name, n.Key
		ws = two[:2]
	case s.Kind == schema.Leaf && s.Positional:
		two[0] = n.Key
		ws = two[:1]
	default:
		two[0] = s.Name
		ws = two[:1]
	}
	if mask && s.Secret && n.Key != "" && !secret.Is(n.Key) {
		ws[len(ws)-1] = maskSecret(n.Key)
	}
	if s.Braces && !n.flatInline() {
		ws = ws[1:] // the keyword heads the block
	}
	for _, w := range ws {
		out = append(out, quote(w))
	}
	if s.Kind == schema.LeafList {
		if len(n.Values) == 1 {
			return append(out, quote(n.Values[0]))
		}
		out = append(out, "[")
		for _, v := range n.Values {
			out = append(out, quote(v))
		}
		return append(out, "]")
	}
	if s.Flat || n.flatInline() {
		for _, c := range n.Children {
			out = c.headTo(out, mask)
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
