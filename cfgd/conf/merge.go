package conf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sitesec/sitesec/cfgd/schema"
)

// Merge adds src's statements to dst, as `load merge` does: leaves take
// src's value, leaf-lists gain src's values, containers and list entries
// merge recursively. With replace, a statement marked "replace:" in src
// replaces dst's statement wholesale (`load replace`).
func Merge(dst, src *Node, replace bool) {
	for _, c := range src.Children {
		m := dst.ensure(c.Schema, c.Key, c.Pos)
		if replace && c.replace {
			r := c.Clone()
			r.replace = false
			i := slices.Index(dst.Children, m)
			dst.Children[i] = r
			dst.changed()
			r.Parent = dst
			continue
		}
		m.Key = c.Key
		m.Pos = c.Pos
		m.Inactive = c.Inactive
		if len(c.Comments) > 0 {
			m.Comments = slices.Clone(c.Comments)
		}
		for _, v := range c.Values {
			if !slices.Contains(m.Values, v) {
				m.Values = append(m.Values, v)
			}
		}
		Merge(m, c, replace)
	}
}

// Diff returns `show | compare` output: the changes from old to new in
// Junos format, a "[edit path]" banner for each changed level and the
// removed and added statements marked '-' and '+'. It is empty when the
// configurations are equal.
func Diff(old, new *Node) string {
	var b strings.Builder
	diff(&b, old, new)
	return b.String()
}

func diff(b *strings.Builder, o, n *Node) {
	banner := false
	emit := func(sign string, x *Node) {
		if !banner {
			b.WriteString(n.EditPath() + "\n")
			banner = true
		}
		var r strings.Builder
		renderer{b: &r}.curly(x, 1, nil)
		for _, l := range strings.Split(strings.TrimRight(r.String(), "\n"), "\n") {
			b.WriteString(sign + l[1:] + "\n")
		}
	}
	// Both child lists are in schema order; walk them together so the
	// changes come out in the order show configuration prints them.
	type item struct {
		old, new *Node
	}
	var items []item
	for _, oc := range o.Children {
		items = append(items, item{old: oc, new: n.child(oc.Schema, oc.Key)})
	}
	for _, nc := range n.Children {
		if o.child(nc.Schema, nc.Key) == nil {
			items = append(items, item{new: nc})
		}
	}
	idx := func(it item) int {
		if it.old != nil {
			return it.old.Schema.Index()
		}
		return it.new.Schema.Index()
	}
	slices.SortStableFunc(items, func(a, b item) int { return idx(a) - idx(b) })
	var recurse []item
	for _, it := range items {
		switch {
		case it.new == nil:
			emit("-", it.old)
		case it.old == nil:
			emit("+", it.new)
		case leafLike(it.new) || it.old.Inactive != it.new.Inactive:
			if !Equal(it.old, it.new) {
				emit("-", it.old)
				emit("+", it.new)
			}
		default:
			recurse = append(recurse, it)
		}
	}
	for _, it := range recurse {
		diff(b, it.old, it.new)
	}
}

// leafLike nodes are compared whole: leaves, leaf-lists and one-line
// statements.
func leafLike(n *Node) bool {
	return n.Schema.Kind == schema.Leaf || n.Schema.Kind == schema.LeafList || n.Schema.Flat ||
		(n.Schema.Kind != schema.Container && len(n.Schema.Children) == 0)
}

// Load applies text to cfg the way `load MODE` does: merge, override,
// replace (curly-brace syntax) or set (set/delete lines). For merge,
// override and replace, text in set syntax is accepted too and applied as
// set lines. cfg is changed only when the whole text parses.
func Load(cfg *Node, mode, file, text string) (*Node, error) {
	return LoadAt(cfg, nil, mode, file, text)
}

// LoadAt is Load with `relative`: the text's statements are below the
// edit level at (command words, "services service-set ss1").
func LoadAt(cfg *Node, at []string, mode, file, text string) (*Node, error) {
	if mode == "set" || IsSetSyntax(text) {
		if mode == "override" {
			cfg = New()
		} else {
			cfg = cfg.Clone()
		}
		if err := parseSetAt(cfg, at, file, text); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	if len(at) > 0 {
		// Wrap the text in its level, on its first line so that line
		// numbers stay those of the text.
		var w []string
		for _, x := range at {
			w = append(w, quote(x))
		}
		text = strings.Join(w, " ") + " { " + text + "\n}"
	}
	src, err := Parse(file, text)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "override":
		return src, nil
	case "merge", "replace":
		out := cfg.Clone()
		Merge(out, src, mode == "replace")
		return out, nil
	}
	return nil, fmt.Errorf("conf: unknown load mode %q (expecting merge, override, replace or set)", mode)
}
