package conf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sitesec/sitesec/cfgd/schema"
)

// target is what the words of one statement lead to.
type target struct {
	parent *Node        // the container or list entry holding the statement
	schema *schema.Node // the statement's schema
	node   *Node        // the statement itself; nil for "every entry" (delete service-set)
	value  string       // the leaf-list value named, if any
	// segs are the words of each level walked, for the edit path.
	segs [][]string
}

// walk consumes the words of one statement below cur, the way both the
// curly-brace parser and set lines read them. With create it builds
// missing nodes and sets values; without, it only finds them (delete,
// activate, edit of an existing node) and a trailing keyword may name a
// statement without its value.
func walk(cur *Node, ws []token, create bool) (target, error) {
	return walkx(cur, ws, create, false, nil)
}

// walkx is walk with two more choices. With open, a list keyword may end
// the words without its key (the Junos brace form "source-address {
// 10.1.12.0/24; }"): the target is then the list itself (node nil, schema
// the list, parent the node holding it). Every node the walk creates is
// appended to *made, so a failed set can take them back.
//
// After a leaf's value, a word that names no statement at the current level
// names one of a level walked earlier in the same statement, as Junos reads
// "set ... dead-peer-detection interval 20 threshold 5" and "set ... manual
// direction bidirectional protocol esp spi 256 authentication algorithm A
// key ascii-text K encryption algorithm E key ascii-text K".
func walkx(cur *Node, ws []token, create, open bool, made *[]*Node) (target, error) {
	return walkSegs(cur, ws, create, open, false, made)
}

// walkSegs is walkx that, with segs, also records the target's segs (only
// edit needs them: half a million statements of a load built them for
// nothing).
func walkSegs(cur *Node, ws []token, create, open, segs bool, made *[]*Node) (target, error) {
	var t target
	ensure := func(n *Node, s *schema.Node, key string, pos Pos) *Node {
		c, created := n.ensureNew(s, key, pos)
		if created && made != nil {
			*made = append(*made, c)
		}
		return c
	}
	var levelsBuf [8]*Node
	levels := append(levelsBuf[:0], cur) // the containers and list entries walked, for words after a leaf
	afterLeaf := false
	lastLeaf := ""
	t.parent = cur
	t.node = cur
	t.schema = cur.Schema
	errAt := func(tk token, format string, a ...any) error {
		return &Error{Pos: tk.pos, Path: cur.EditPath(), Stmt: tk.text, Msg: fmt.Sprintf(format, a...), Syntax: true}
	}
	// valErr quotes the statement as it was written: the keyword, any
	// keywords between it and the value, and the value. A positional
	// value (local-gateway 192.0.2.1) is its parent's statement, under
	// the parent's own level, never the schema's name for the value.
	valErr := func(tk token, s *schema.Node, err error, between ...string) error {
		kw, path := s.Name, cur.EditPath()
		if s.Positional && cur.Parent != nil {
			kw, path = cur.Schema.Name, cur.Parent.EditPath()
		}
		stmt := strings.Join(append(append([]string{kw}, between...), quote(tk.text)), " ")
		if s.Secret {
			stmt = kw // never echo key material
		}
		return &Error{Pos: tk.pos, Path: path, Stmt: stmt, Msg: err.Error()}
	}
	i := 0
	for i < len(ws) {
		w := ws[i]
		if w.kind != tWord {
			return t, errAt(w, "unexpected %s", w)
		}
		sc := cur.Schema
		var c *schema.Node
		if !w.quoted {
			c = sc.Child(w.text)
		}
		if c == nil && afterLeaf && !w.quoted {
			for j := len(levels) - 2; j >= 0 && c == nil; j-- {
				if c = levels[j].Schema.Child(w.text); c != nil {
					cur, sc = levels[j], levels[j].Schema
					levels = levels[:j+1]
				}
			}
			if c == nil && sc.KeylessList() == nil && sc.PositionalLeaf() == nil {
				return t, errAt(w, "unexpected '%s' after '%s'", w.text, lastLeaf)
			}
		}
		afterLeaf = false
		if c != nil {
			i++
		} else if kl := sc.KeylessList(); kl != nil {
			c = kl
		} else if pl := sc.PositionalLeaf(); pl != nil {
			c = pl
		} else {
			return t, errAt(w, "unexpected '%s' (expecting one of: %s)", w.text, expect(sc))
		}
		t.parent, t.schema, t.node, t.value = cur, c, nil, ""
		kw := w
		more := func() bool { return i < len(ws) && ws[i].kind == tWord }
		switch c.Kind {
		case schema.Container:
			n := cur.child(c, "")
			if n == nil {
				if !create {
					return t, &Error{Pos: kw.pos, Path: cur.EditPath(), Stmt: c.Name, Msg: "statement not found"}
				}
				n = ensure(cur, c, "", kw.pos)
			}
			t.node = n
			if segs {
				t.segs = append(t.segs, []string{c.Name})
			}
			cur = n
			levels = append(levels, n)
		case schema.List:
			var key string
			if len(c.KeyWords) > 0 {
				var parts []string
				for _, kwd := range c.KeyWords {
					if !more() && !create && len(parts) == 0 {
						return t, nil
					}
					if !more() || ws[i].text != kwd {
						return t, errAt(kw, "expecting '%s'", kwd)
					}
					if i+1 >= len(ws) || ws[i+1].kind != tWord {
						return t, errAt(ws[i], "missing value for '%s'", kwd)
					}
					if err := schema.TPrefix.Check(ws[i+1].text); err != nil {
						return t, valErr(ws[i+1], c, err, append(parts, kwd)...)
					}
					parts = append(parts, kwd, ws[i+1].text)
					i += 2
				}
				key = strings.Join(parts, " ")
			} else {
				if !more() {
					if !create || open && i == len(ws) {
						return t, nil // every entry, or the brace form's list
					}
					return t, errAt(kw, "missing name for '%s' (%s)", c.Name, c.Type.Help())
				}
				if err := c.Type.Check(ws[i].text); err != nil {
					return t, valErr(ws[i], c, err)
				}
				key = ws[i].text
				i++
			}
			n := cur.child(c, key)
			if n == nil {
				if !create {
					return t, &Error{Pos: kw.pos, Path: cur.EditPath(), Stmt: c.Name + " " + key, Msg: "statement not found"}
				}
				if c.Max > 0 && len(cur.All(c.Name)) >= c.Max {
					return t, valErr(ws[i-1], c, fmt.Errorf("at most %d %s may be configured", c.Max, c.Name))
				}
				n = ensure(cur, c, key, kw.pos)
			}
			t.node = n
			if segs {
				var seg []string
				if !c.Keyless {
					seg = []string{c.Name}
				}
				if len(c.KeyWords) > 0 {
					seg = append(seg, strings.Fields(key)...)
				} else {
					seg = append(seg, key)
				}
				t.segs = append(t.segs, seg)
			}
			cur = n
			levels = append(levels, n)
		case schema.Leaf:
			var val string
			if c.Type != nil {
				if !more() {
					if !create {
						t.node = cur.child(c, "")
						if t.node == nil {
							return t, &Error{Pos: kw.pos, Path: cur.EditPath(), Stmt: c.Name, Msg: "statement not found"}
						}
						return t, nil
					}
					return t, errAt(kw, "missing value for '%s' (%s)", c.Name, c.Type.Help())
				}
				if err := c.CheckValue(ws[i].text); err != nil {
					return t, valErr(ws[i], c, err)
				}
				val = ws[i].text
				i++
			}
			if create {
				t.node = ensure(cur, c, val, kw.pos)
			} else {
				t.node = cur.child(c, "")
				if t.node == nil {
					return t, &Error{Pos: kw.pos, Path: cur.EditPath(), Stmt: c.Name, Msg: "statement not found"}
				}
			}
			if i < len(ws) && !cur.Schema.Flat && !create {
				return t, errAt(ws[i], "unexpected '%s' after '%s'", ws[i].text, c.Name)
			}
			afterLeaf, lastLeaf = !cur.Schema.Flat, c.Name
		case schema.LeafList:
			var vals []token
			if i < len(ws) && ws[i].kind == tLBrack {
				i++
				for i < len(ws) && ws[i].kind == tWord {
					vals = append(vals, ws[i])
					i++
				}
				if i >= len(ws) || ws[i].kind != tRBrack {
					return t, errAt(kw, "missing ']'")
				}
				i++
			} else if more() {
				vals = append(vals, ws[i])
				i++
			}
			if len(vals) == 0 && create {
				return t, errAt(kw, "missing value for '%s' (%s)", c.Name, c.Type.Help())
			}
			for _, v := range vals {
				if err := c.Type.Check(v.text); err != nil {
					return t, valErr(v, c, err)
				}
			}
			n := cur.child(c, "")
			if n == nil {
				if !create {
					return t, &Error{Pos: kw.pos, Path: cur.EditPath(), Stmt: c.Name, Msg: "statement not found"}
				}
				n = ensure(cur, c, "", kw.pos)
			}
			t.node = n
			for _, v := range vals {
				if !create {
					if !slices.Contains(n.Values, v.text) {
						return t, &Error{Pos: v.pos, Path: cur.EditPath(), Stmt: c.Name + " " + v.text, Msg: "statement not found"}
					}
					t.value = v.text
					continue
				}
				if !slices.Contains(n.Values, v.text) {
					if c.Max > 0 && len(n.Values) >= c.Max {
						return t, valErr(v, c, fmt.Errorf("at most %d values may be configured", c.Max))
					}
					n.Values = append(n.Values, v.text)
				}
			}
			if i < len(ws) && !cur.Schema.Flat && !create {
				return t, errAt(ws[i], "unexpected '%s' after '%s'", ws[i].text, c.Name)
			}
			afterLeaf, lastLeaf = !cur.Schema.Flat, c.Name
		}
	}
	return t, nil
}

// undo removes the nodes a failed statement created, newest first, so a
// set with a bad value leaves no empty parent block behind.
func undo(made []*Node) {
	for i := len(made) - 1; i >= 0; i-- {
		n := made[i]
		if n.Parent != nil && len(n.Children) == 0 {
			n.Parent.remove(n)
		}
	}
}

func expect(s *schema.Node) string {
	var w []string
	for _, c := range s.Candidates("") {
		w = append(w, c.Word)
	}
	if len(w) == 0 {
		return "';' or '{'"
	}
	return strings.Join(w, " ")
}

// maxErrors bounds the errors one parse reports.
const maxErrors = 50

// Parse reads curly-brace configuration text. Comments are kept with the
// statement that follows them; "inactive:" and "replace:" prefixes are
// accepted. It reports every syntax error it can recover from.
func Parse(file, text string) (*Node, error) {
	root := New()
	p := &parser{lx: newLexer(file, text)}
	p.tok = p.lx.next()
	p.block(root, true)
	if p.lx.err != nil {
		p.errs = append(p.errs, p.lx.err)
	}
	if len(p.errs) > 0 {
		return root, p.errs
	}
	return root, nil
}

type parser struct {
	lx   *lexer
	tok  token // the next token
	errs Errors
	// ws and made are block's per-statement buffers, reused: a statement
	// is done with them before block recurses into its braces (issue 15
	// goal 5: half a million statements each grew its own).
	ws   []token
	made []*Node
}

func (p *parser) peek() token { return p.tok }
func (p *parser) next() token {
	t := p.tok
	if t.kind != tEOF {
		p.tok = p.lx.next()
	}
	return t
}

func (p *parser) fail(err error) {
	if e, ok := err.(*Error); ok {
		if len(p.errs) < maxErrors {
			p.errs = append(p.errs, e)
		}
	}
}

// skip moves past the rest of a bad statement: to its ';', or over its
// block.
func (p *parser) skip() {
	depth := 0
	for {
		t := p.next()
		switch t.kind {
		case tEOF:
			return
		case tLBrace:
			depth++
		case tRBrace:
			depth--
			if depth <= 0 {
				return
			}
		case tSemi:
			if depth == 0 {
				return
			}
		}
	}
}

// block parses the statements of cur's block. prefix is the list keyword
// of a brace-form list ("source-address { 10.1.12.0/24; }"), which each
// statement of the block continues.
func (p *parser) block(cur *Node, top bool, prefix ...token) {
	var comments []string
	for {
		t := p.peek()
		switch t.kind {
		case tEOF:
			if !top {
				p.fail(&Error{Pos: t.pos, Path: cur.EditPath(), Msg: "missing '}'", Syntax: true})
			}
			return
		case tRBrace:
			p.next()
			if top {
				p.fail(&Error{Pos: t.pos, Msg: "unexpected '}'", Syntax: true})
				continue
			}
			return
		case tComment:
			p.next()
			if !t.trailing {
				comments = append(comments, t.text)
			}
			continue
		case tSemi:
			p.next()
			continue
		}
		inactive, replace := false, false
		for t := p.peek(); t.kind == tWord && !t.quoted && (t.text == "inactive:" || t.text == "replace:" || t.text == "protect:"); t = p.peek() {
			p.next()
			inactive = inactive || t.text == "inactive:"
			replace = replace || t.text == "replace:"
		}
		ws := p.ws[:0]
		for {
			t := p.peek()
			if t.kind == tWord || t.kind == tLBrack || t.kind == tRBrack {
				ws = append(ws, p.next())
				continue
			}
			if t.kind == tComment {
				p.next()
				continue
			}
			break
		}
		end := p.peek()
		if len(ws) == 0 {
			p.fail(&Error{Pos: end.pos, Path: cur.EditPath(), Msg: "unexpected " + end.String(), Syntax: true})
			p.skip()
			comments = nil
			continue
		}
		if end.kind != tSemi && end.kind != tLBrace {
			p.fail(&Error{Pos: end.pos, Path: cur.EditPath(), Msg: fmt.Sprintf("missing ';' or '{' after %s", ws[len(ws)-1]), Syntax: true})
			if end.kind == tRBrace || end.kind == tEOF {
				continue
			}
			p.skip()
			continue
		}
		p.ws = ws
		if len(prefix) > 0 {
			ws = append(slices.Clone(prefix), ws...)
		}
		made := p.made[:0]
		t2, err := walkx(cur, ws, true, end.kind == tLBrace && len(prefix) == 0, &made)
		p.made = made[:0]
		if err != nil {
			undo(made)
			p.fail(err)
			p.skip()
			comments = nil
			continue
		}
		p.next()
		if t2.node == nil { // a list in the brace form: each statement of the block is an entry
			kw := ws[len(ws)-1]
			if len(comments) > 0 || inactive {
				p.fail(&Error{Pos: kw.pos, Path: t2.parent.EditPath(), Stmt: kw.text, Msg: "comments and 'inactive:' go on the entries of a list", Syntax: true})
			}
			comments = nil
			p.block(t2.parent, false, kw)
			continue
		}
		n := t2.node
		n.Pos = ws[0].pos
		n.Inactive = n.Inactive || inactive
		n.replace = replace
		n.Comments = append(n.Comments, comments...)
		comments = nil
		if end.kind == tLBrace {
			if n.Schema.Kind != schema.Container && n.Schema.Kind != schema.List {
				p.fail(&Error{Pos: end.pos, Path: cur.EditPath(), Stmt: n.Schema.Name, Msg: "unexpected '{'", Syntax: true})
				p.skip()
				continue
			}
			p.block(n, false)
		}
	}
}

// Line is one set-style command: its verb and its words.
type Line struct {
	Verb  string // set, delete, activate, deactivate
	Words []token
	Pos   Pos
}

// ParseSet reads set/delete/activate/deactivate lines and applies them in
// order to cfg. Blank lines and comments are skipped. It reports every
// line that fails; the others are applied.
func ParseSet(cfg *Node, file, text string) error {
	return parseSetAt(cfg, nil, file, text)
}

func parseSetAt(cfg *Node, at []string, file, text string) error {
	lx := newLexer(file, text)
	var errs Errors
	var line []token
	flush := func() {
		if len(line) == 0 {
			return
		}
		ws := line
		line = nil
		if err := Exec(cfg, at, ws); err != nil && len(errs) < maxErrors {
			errs = append(errs, err.(*Error))
		}
	}
	for {
		t := lx.next()
		if t.kind == tComment {
			continue
		}
		if len(line) > 0 && (t.kind == tEOF || t.pos.Line != line[0].pos.Line) {
			flush()
		}
		if t.kind == tEOF {
			break
		}
		line = append(line, t)
	}
	if lx.err != nil {
		errs = append(Errors{lx.err}, errs...)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Exec runs one set-style command (verb first) relative to the edit path
// at (nil for the top).
func Exec(cfg *Node, at []string, ws []token) error {
	verb := ws[0]
	if verb.kind != tWord {
		return &Error{Pos: verb.pos, Msg: "unexpected " + verb.String(), Syntax: true}
	}
	words := append(toWords(at, verb.pos), ws[1:]...)
	switch verb.text {
	case "set":
		if len(ws) < 2 {
			return &Error{Pos: verb.pos, Msg: "missing statement after 'set'", Syntax: true}
		}
		var made []*Node
		_, err := walkx(cfg, words, true, false, &made)
		if err != nil {
			undo(made)
		}
		return err
	case "delete", "activate", "deactivate":
		t, err := walk(cfg, words, false)
		if err != nil {
			return err
		}
		if len(ws) < 2 && len(at) == 0 && verb.text != "delete" {
			return &Error{Pos: verb.pos, Msg: "missing statement after '" + verb.text + "'", Syntax: true}
		}
		return apply(verb.text, t)
	case "insert":
		return insert(cfg, words)
	case "annotate":
		return annotate(cfg, words)
	}
	return &Error{Pos: verb.pos, Stmt: verb.text, Msg: "expecting set, delete, activate, deactivate or insert", Syntax: true}
}

// insert reorders an ordered list entry or leaf-list value, as Junos
// `insert term t2 before term t1` (the reference may also be given by its
// key alone: `insert proposals p2 before p1`).
func insert(cfg *Node, ws []token) error {
	i := slices.IndexFunc(ws, func(t token) bool { return t.kind == tWord && (t.text == "before" || t.text == "after") })
	if i < 1 || i == len(ws)-1 {
		return &Error{Msg: "expecting insert STATEMENT (before|after) REFERENCE", Syntax: true}
	}
	after := ws[i].text == "after"
	ref := ws[len(ws)-1].text
	t, err := walk(cfg, ws[:i], false)
	if err != nil {
		return err
	}
	if t.value != "" {
		v := slices.DeleteFunc(slices.Clone(t.node.Values), func(x string) bool { return x == t.value })
		j := slices.Index(v, ref)
		if j < 0 {
			return &Error{Pos: ws[len(ws)-1].pos, Stmt: ref, Msg: "reference statement not found"}
		}
		if after {
			j++
		}
		t.node.Values = slices.Insert(v, j, t.value)
		return nil
	}
	if t.node == nil || t.node.Schema.Kind != schema.List {
		return &Error{Pos: ws[0].pos, Msg: "insert applies to list entries and leaf-list values", Syntax: true}
	}
	p := t.node.Parent
	isRef := func(c *Node) bool { return c.Schema == t.node.Schema && c.Key == ref && c != t.node }
	if !slices.ContainsFunc(p.Children, isRef) {
		return &Error{Pos: ws[len(ws)-1].pos, Stmt: ref, Msg: "reference statement not found"}
	}
	p.remove(t.node)
	j := slices.IndexFunc(p.Children, isRef)
	if after {
		j++
	}
	p.Children = slices.Insert(p.Children, j, t.node)
	return nil
}

// annotate attaches a comment to a statement, as Junos `annotate
// STATEMENT "text"`; an empty text removes it.
func annotate(cfg *Node, ws []token) error {
	if len(ws) < 2 {
		return &Error{Msg: "expecting annotate STATEMENT \"comment\"", Syntax: true}
	}
	text := ws[len(ws)-1]
	t, err := walk(cfg, ws[:len(ws)-1], false)
	if err != nil {
		return err
	}
	if t.node == nil || t.node.Parent == nil {
		return &Error{Pos: text.pos, Msg: "annotate needs one statement", Syntax: true}
	}
	t.node.Comments = nil
	if text.text != "" {
		t.node.Comments = []string{"/* " + strings.ReplaceAll(text.text, "*/", "* /") + " */"}
	}
	return nil
}

func apply(verb string, t target) error {
	switch {
	case t.node == t.parent && t.parent.Parent == nil && verb == "delete":
		t.parent.Children = nil // delete everything
		return nil
	case t.node == nil: // every entry of a list
		var l []*Node
		for _, c := range t.parent.Children {
			if c.Schema == t.schema {
				l = append(l, c)
			}
		}
		for _, c := range l {
			if verb == "delete" {
				t.parent.remove(c)
			} else {
				c.Inactive = verb == "deactivate"
			}
		}
		return nil
	case verb == "delete" && t.value != "":
		t.node.Values = slices.DeleteFunc(t.node.Values, func(v string) bool { return v == t.value })
		if len(t.node.Values) == 0 {
			t.node.Parent.remove(t.node)
		}
		return nil
	case verb == "delete":
		t.node.Parent.remove(t.node)
		return nil
	}
	t.node.Inactive = verb == "deactivate"
	return nil
}

func toWords(at []string, pos Pos) []token {
	var ws []token
	for _, w := range at {
		ws = append(ws, token{kind: tWord, text: w, pos: pos})
	}
	return ws
}

// Words turns command words (already split, as cli sends them) into
// tokens: "[" and "]" become brackets, the rest plain words.
func Words(words []string, pos Pos) []token {
	var ws []token
	for _, w := range words {
		switch w {
		case "[":
			ws = append(ws, token{kind: tLBrack, text: w, pos: pos})
		case "]":
			ws = append(ws, token{kind: tRBrack, text: w, pos: pos})
		default:
			ws = append(ws, token{kind: tWord, text: w, pos: pos})
		}
	}
	return ws
}

// Run executes one set-style command given as words ("set", "services",
// ...) relative to the edit path at.
func Run(cfg *Node, at []string, words []string) error {
	if len(words) == 0 {
		return &Error{Msg: "missing command", Syntax: true}
	}
	return Exec(cfg, at, Words(words, Pos{}))
}

// Resolve checks that path names an existing or creatable container or
// list entry and returns its levels, each the words of one level
// ("service-set", "ss1"), for edit and up. It does not change cfg.
func Resolve(cfg *Node, path []string) ([][]string, error) {
	scratch := cfg.Clone()
	t, err := walkSegs(scratch, Words(path, Pos{}), true, false, true, nil)
	if err != nil {
		return nil, err
	}
	if k := t.schema.Kind; k != schema.Container && k != schema.List {
		return nil, &Error{Msg: fmt.Sprintf("'%s' is not a container: use set", t.schema.Name), Syntax: true}
	}
	return t.segs, nil
}

// IsSetSyntax reports whether text looks like set/delete lines rather than
// curly-brace configuration: its first statement word is a set verb.
func IsSetSyntax(text string) bool {
	lx := newLexer("", text)
	for t := lx.next(); t.kind != tEOF; t = lx.next() {
		if t.kind == tComment {
			continue
		}
		return t.kind == tWord && !t.quoted && (t.text == "set" || t.text == "delete" || t.text == "deactivate" || t.text == "activate")
	}
	return false
}
