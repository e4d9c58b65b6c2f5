package cli

import (
	"strings"

	"github.com/sitesec/sitesec/cfgd/conf"
	"github.com/sitesec/sitesec/cfgd/schema"
)

// Configuration mode's `show ... | display xml` (issue 12 item 7). cfgd
// answers the show as set lines (absolute paths, secrets in their $9$
// form); the cli reads them back into a tree and prints it as Junos
// prints a configuration in XML: <configuration> in an <rpc-reply>, one
// element per statement, a list entry's key in <name>, a flag as an empty
// element, a deactivated statement with inactive="inactive", and the
// <cli><banner>[edit ...]</banner></cli> trailer.

// configXML renders set lines as Junos's XML configuration.
func configXML(setLines []string, banner string) (string, error) {
	root := conf.New()
	var keep []string
	for _, l := range setLines {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "set ") || strings.HasPrefix(t, "deactivate ") {
			keep = append(keep, l)
		}
	}
	if err := conf.ParseSet(root, "show", strings.Join(keep, "\n")); err != nil {
		return "", err
	}
	top := newElem("configuration")
	for _, c := range root.Children {
		configElems(top, c)
	}
	var b strings.Builder
	b.WriteString(`<rpc-reply xmlns:junos="` + junosNS("junos") + `">` + "\n")
	writeXML(&b, top, 1)
	b.WriteString("    <cli>\n        <banner>" + xmlEscape(banner) + "</banner>\n    </cli>\n</rpc-reply>")
	return b.String(), nil
}

func configElems(parent *elem, n *conf.Node) {
	s := n.Schema
	var attrs [][2]string
	if n.Inactive {
		attrs = append(attrs, [2]string{"inactive", "inactive"})
	}
	switch s.Kind {
	case schema.LeafList:
		for _, v := range n.Values {
			parent.kids = append(parent.kids, &elem{name: s.Name, attrs: attrs, leaf: true, text: v})
		}
	case schema.Leaf:
		if n.Key == "" && len(n.Children) == 0 {
			parent.kids = append(parent.kids, &elem{name: s.Name, attrs: attrs})
			return
		}
		parent.kids = append(parent.kids, &elem{name: s.Name, attrs: attrs, leaf: true, text: n.Key})
	default:
		e := &elem{name: s.Name, attrs: attrs}
		if s.Kind == schema.List && n.Key != "" {
			e.kids = append(e.kids, &elem{name: "name", leaf: true, text: n.Key})
		}
		for _, c := range n.Children {
			configElems(e, c)
		}
		parent.kids = append(parent.kids, e)
	}
}
