package cli

// `| display xml` and `| display json` in Junos's shapes, so scripts
// written against a Junos router read sitesec's answers unchanged.
//
// Both print one element tree. For the commands Junos documents (the IKE
// and IPsec show commands of SPEC section 4) the tree has Junos's element
// names and nesting, taken from the RPC output tags [Yr] and from real MX
// output in Juniper's Toby library [T]:
//
//	<ike-security-associations-block>
//	    <ike-sa-remote-address>10.0.1.2</ike-sa-remote-address>
//	    <ike-security-associations>
//	        <ike-sa-role>initiator</ike-sa-role> ...
//
// Where neither source names an element (the phase 2 list of IKE SA
// detail, the blocks of ipsec statistics), the name follows the same
// pattern and is listed in cfgd/README.md. Any other reply becomes a tree
// of its protobuf fields with '_' turned into '-'.
//
// XML is wrapped in <rpc-reply> with the junos: namespace and ends with the
// <cli><banner></banner></cli> Junos appends. JSON is Junos's rendering of
// that XML: every element is a list of objects, a leaf is [{"data": v}],
// an empty element [null], attributes go in "attributes".

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
)

// junosRelease is the release in the namespaces: the YANG release SPEC
// takes the output tags from.
const junosRelease = "24.4R1"

func junosNS(module string) string {
	return "http://xml.juniper.net/junos/" + junosRelease + "/" + module
}

// elem is one XML element: a leaf with text, or a container.
type elem struct {
	name  string
	attrs [][2]string
	text  string
	leaf  bool
	kids  []*elem
}

func newElem(name string, attrs ...[2]string) *elem { return &elem{name: name, attrs: attrs} }

// sub adds and returns a container child.
func (e *elem) sub(name string) *elem {
	c := &elem{name: name}
	e.kids = append(e.kids, c)
	return c
}

// add adds a leaf child with v's text.
func (e *elem) add(name string, v any) *elem {
	e.kids = append(e.kids, &elem{name: name, text: fmt.Sprint(v), leaf: true})
	return e
}

// opt adds a leaf only when s is not empty.
func (e *elem) opt(name, s string) *elem {
	if s != "" {
		e.add(name, s)
	}
	return e
}

// junosTree returns the Junos-shaped tree of a reply, or nil when the
// reply's command has no Junos counterpart.
func junosTree(r *pb.OpReply) *elem {
	switch b := r.Body.(type) {
	case *pb.OpReply_IkeSecurityAssociations:
		return ikeSATree(b.IkeSecurityAssociations)
	case *pb.OpReply_IkeStatistics:
		return ikeStatisticsTree(b.IkeStatistics)
	case *pb.OpReply_IpsecSecurityAssociations:
		return ipsecSATree(b.IpsecSecurityAssociations)
	case *pb.OpReply_IpsecStatistics:
		return ipsecStatisticsTree(b.IpsecStatistics)
	case *pb.OpReply_ServiceSetSummary:
		return serviceSetSummaryTree(b.ServiceSetSummary)
	}
	return nil
}

// replyTree is the tree `| display xml|json` prints for any reply.
func replyTree(r *pb.OpReply) *elem {
	if t := junosTree(r); t != nil {
		return t
	}
	m := r.ProtoReflect()
	if od := m.Descriptor().Oneofs().ByName("body"); od != nil {
		if fd := m.WhichOneof(od); fd != nil {
			root := newElem(jsonRoot(fd), [2]string{"xmlns", junosNS("sitesec")})
			protoTree(root, redact.Clone(m.Get(fd).Message().Interface()))
			return root
		}
	}
	root := newElem("output")
	root.text, root.leaf = strings.Join(r.Lines, "\n"), true
	return root
}

// protoTree adds m's set fields below e, named after the fields.
func protoTree(e *elem, m proto.Message) {
	pr := m.ProtoReflect()
	fds := pr.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if !pr.Has(fd) {
			continue
		}
		name := strings.ReplaceAll(string(fd.Name()), "_", "-")
		v := pr.Get(fd)
		switch {
		case fd.IsMap():
			var keys []string
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k.String())
				return true
			})
			sort.Strings(keys)
			c := e.sub(name)
			for _, k := range keys {
				c.add(k, scalarText(fd.MapValue(), v.Map().Get(protoreflect.ValueOfString(k).MapKey())))
			}
		case fd.IsList():
			for j := 0; j < v.List().Len(); j++ {
				if fd.Message() != nil {
					protoTree(e.sub(name), v.List().Get(j).Message().Interface())
				} else {
					e.add(name, scalarText(fd, v.List().Get(j)))
				}
			}
		case fd.Message() != nil:
			protoTree(e.sub(name), v.Message().Interface())
		default:
			e.add(name, scalarText(fd, v))
		}
	}
}

func scalarText(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.BytesKind:
		return fmt.Sprintf("%x", v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
	}
	return v.String()
}

// renderXML prints the tree as Junos prints `| display xml`.
func renderXML(root *elem) string {
	var b strings.Builder
	b.WriteString(`<rpc-reply xmlns:junos="` + junosNS("junos") + `">` + "\n")
	writeXML(&b, root, 1)
	b.WriteString("    <cli>\n        <banner></banner>\n    </cli>\n</rpc-reply>")
	return b.String()
}

func writeXML(b *strings.Builder, e *elem, depth int) {
	ind := strings.Repeat("    ", depth)
	b.WriteString(ind + "<" + e.name)
	for _, a := range e.attrs {
		b.WriteString(" " + a[0] + `="` + xmlEscape(a[1]) + `"`)
	}
	if e.leaf {
		b.WriteString(">" + xmlEscape(e.text) + "</" + e.name + ">\n")
		return
	}
	if len(e.kids) == 0 {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">\n")
	for _, k := range e.kids {
		writeXML(b, k, depth+1)
	}
	b.WriteString(ind + "</" + e.name + ">\n")
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func xmlEscape(s string) string { return xmlEscaper.Replace(s) }

// renderDisplayJSON is `| display json`: Junos's shape for the commands
// Junos has, the protobuf fields for sitesec's own (show system
// processes), which scripts already read.
func renderDisplayJSON(r *pb.OpReply) string {
	if t := junosTree(r); t != nil {
		return renderJunosJSON(t)
	}
	return renderJSON(r)
}

// renderJunosJSON prints the tree as Junos prints `| display json`.
func renderJunosJSON(root *elem) string {
	doc := map[string]any{root.name: []any{jsonObject(root)}}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	return strings.TrimRight(out.String(), "\n")
}

// jsonObject is one element's object: its attributes and, per child name
// in first-seen order, the list of those children.
func jsonObject(e *elem) any {
	if e.leaf {
		if e.text == "" {
			return nil
		}
		return orderedObject{{"data", e.text}}
	}
	var o orderedObject
	if len(e.attrs) > 0 {
		var a orderedObject
		for _, kv := range e.attrs {
			a = append(a, kvPair{kv[0], kv[1]})
		}
		o = append(o, kvPair{"attributes", a})
	}
	idx := map[string]int{}
	for _, k := range e.kids {
		i, ok := idx[k.name]
		if !ok {
			i = len(o)
			idx[k.name] = i
			o = append(o, kvPair{k.name, []any{}})
		}
		o[i].v = append(o[i].v.([]any), jsonObject(k))
	}
	if len(o) == 0 {
		return nil
	}
	return o
}

type kvPair struct {
	k string
	v any
}

// orderedObject is a JSON object that keeps its keys in element order.
type orderedObject []kvPair

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(p.k)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(p.v); err != nil {
			return nil, err
		}
		b.Write(bytes.TrimRight(vb.Bytes(), "\n"))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// style is the junos:style attribute of a root.
func style(s string) [2]string { return [2]string{"junos:style", s} }

// ikeSATree: ike-security-associations-information. Brief lists
// ike-security-associations; detail puts each SA in an
// ike-security-associations-block headed by its remote address [T].
func ikeSATree(m *pb.IKESecurityAssociations) *elem {
	lvl := "brief"
	if m.GetDetail() {
		lvl = "detail"
	}
	root := newElem("ike-security-associations-information", [2]string{"xmlns", junosNS("junos-kmd")}, style(lvl))
	for _, sa := range m.GetSas() {
		if !m.GetDetail() {
			e := root.sub("ike-security-associations")
			e.add("ike-sa-index", sa.GetIndex())
			e.add("ike-sa-remote-address", sa.GetRemoteAddress())
			e.add("ike-sa-state", sa.GetState())
			e.add("ike-sa-initiator-cookie", sa.GetInitiatorCookie())
			e.add("ike-sa-responder-cookie", sa.GetResponderCookie())
			e.add("ike-sa-exchange-type", sa.GetExchangeType())
			continue
		}
		blk := root.sub("ike-security-associations-block")
		blk.add("ike-sa-remote-address", sa.GetRemoteAddress())
		e := blk.sub("ike-security-associations")
		e.add("ike-sa-index", sa.GetIndex())
		e.add("ike-sa-role", strings.ToLower(sa.GetRole()))
		e.add("ike-sa-state", sa.GetState())
		e.add("ike-sa-initiator-cookie", sa.GetInitiatorCookie())
		e.add("ike-sa-responder-cookie", sa.GetResponderCookie())
		e.add("ike-sa-exchange-type", sa.GetExchangeType())
		e.add("ike-sa-authentication-method", sa.GetAuthenticationMethod())
		e.add("ike-sa-local-gateway-interface", sa.GetGatewayInterface())
		e.add("ike-sa-routing-instance", sa.GetRoutingInstance())
		e.opt("ike-sa-service-set", sa.GetServiceSet())
		e.add("ike-sa-local-address", sa.GetLocalAddress())
		e.add("ike-sa-local-port", sa.GetLocalPort())
		e.add("ike-sa-remote-address", sa.GetRemoteAddress())
		e.add("ike-sa-remote-port", sa.GetRemotePort())
		e.opt("ike-sa-local-identity", sa.GetLocalIdentity())
		e.opt("ike-sa-remote-identity", sa.GetRemoteIdentity())
		e.add("ike-sa-nat-traversal", map[bool]string{true: "Detected", false: "Not detected"}[sa.GetNatDetected()])
		if sa.GetState() == "matured" || sa.GetExpiresInSeconds() != 0 {
			e.add("ike-sa-lifetime", expires(sa.GetExpiresInSeconds()))
		}
		alg := e.sub("ike-sa-algorithms")
		alg.add("ike-sa-authentication-algorithm", sa.GetAuthenticationAlgorithm())
		alg.add("ike-sa-encryption-algorithm", sa.GetEncryptionAlgorithm())
		alg.add("ike-sa-prf-algorithm", sa.GetPrfAlgorithm())
		alg.add("ike-sa-dhgroup", sa.GetDhGroup())
		st := e.sub("ike-sa-traffic-statistics")
		st.add("ike-sa-input-bytes", sa.GetBytesIn())
		st.add("ike-sa-output-bytes", sa.GetBytesOut())
		st.add("ike-sa-input-packets", sa.GetPacketsIn())
		st.add("ike-sa-output-packets", sa.GetPacketsOut())
		st.add("ike-sa-input-invalid-spi-packets", sa.GetInvalidSpis())
		misc := e.sub("ike-sa-misc")
		misc.add("ike-sa-flags", strings.Join(sa.GetFlags(), ", "))
		misc.add("ike-sa-num-ipsec-sas-created", sa.GetIpsecSasCreated())
		misc.add("ike-sa-num-ipsec-sas-deleted", sa.GetIpsecSasDeleted())
		misc.add("ike-sa-num-ipsec-rekeys", sa.GetRekeys())
		inProgress := 0
		for _, p := range sa.GetPhase2() {
			if p.GetInProgress() {
				inProgress++
			}
		}
		misc.add("ike-sa-phase2-negotiations-in-progress", inProgress)
		for _, p := range sa.GetPhase2() {
			n := e.sub("ike-sa-phase2-negotiation")
			n.add("ike-sa-phase2-negotiation-type", p.GetType())
			n.add("ike-sa-phase2-role", strings.ToLower(p.GetRole()))
			n.add("ike-sa-phase2-message-id", p.GetMessageId())
			n.add("ike-sa-phase2-local-address", p.GetLocal())
			n.add("ike-sa-phase2-remote-address", p.GetRemote())
			n.add("ike-sa-phase2-local-identity", p.GetLocalIdentity())
			n.add("ike-sa-phase2-remote-identity", p.GetRemoteIdentity())
		}
	}
	return root
}

// ikeCounterTags maps kmd's counter keys to the Junos elements of the
// ike-sa-payload-statistics and ike-sa-misc blocks [T]; a key not listed
// becomes ike-sa-KEY in the payload block.
var ikeCounterTags = map[string][2]string{
	"delete-payloads-received": {"payload", "ike-sa-delete-payloads-received"},
	"delete-payloads-sent":     {"payload", "ike-sa-delete-payloads-sent"},
	"dpd-requests-received":    {"payload", "ike-sa-dpd-request-payloads-received"},
	"dpd-requests-sent":        {"payload", "ike-sa-dpd-request-payloads-sent"},
	"dpd-responses-received":   {"payload", "ike-sa-dpd-response-payloads-received"},
	"dpd-responses-sent":       {"payload", "ike-sa-dpd-response-payloads-sent"},
	"dpd-responses-missed":     {"payload", "ike-sa-dpd-response-payloads-missed"},
	"invalid-spi":              {"payload", "ike-sa-invalid-spi-notifications-received"},
	"ipsec-sas-created":        {"misc", "ike-sa-num-ipsec-sas-created"},
	"ipsec-sas-deleted":        {"misc", "ike-sa-num-ipsec-sas-deleted"},
	"ikev2-rekeys":             {"misc", "ike-sa-num-ipsec-rekeys"},
}

// ikeStatisticsTree: one ike-security-associations-block per peer [T].
func ikeStatisticsTree(m *pb.IKEStatistics) *elem {
	root := newElem("ike-security-associations-statistics", [2]string{"xmlns", junosNS("junos-kmd")})
	for _, p := range m.GetPeers() {
		blk := root.sub("ike-security-associations-block")
		blk.add("ike-sa-remote-address", p.GetRemoteAddress())
		e := blk.sub("ike-security-associations")
		e.add("ike-sa-local-address", p.GetLocalAddress())
		e.add("ike-sa-remote-address", p.GetRemoteAddress())
		misc := e.sub("ike-sa-misc")
		pay := e.sub("ike-sa-payload-statistics")
		c := p.GetCounters()
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		// Known counters first, in ikeCounters order, then the rest by key.
		order := map[string]int{}
		for i, k := range ikeCounters {
			order[k.key] = i + 1
		}
		sort.Slice(keys, func(i, j int) bool {
			oi, oj := order[keys[i]], order[keys[j]]
			if (oi == 0) != (oj == 0) {
				return oi != 0
			}
			if oi != oj {
				return oi < oj
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			if t, ok := ikeCounterTags[k]; ok {
				if t[0] == "misc" {
					misc.add(t[1], c[k])
				} else {
					pay.add(t[1], c[k])
				}
				continue
			}
			pay.add("ike-sa-"+k, c[k])
		}
	}
	return root
}

// ipsecSATree: services-security-associations-information with one
// services-security-associations-block per tunnel: the set's name and
// routing instance, sa-tunnel-information, then one
// security-associations per SA [T].
func ipsecSATree(m *pb.IPsecSecurityAssociations) *elem {
	lvl := m.GetLevel()
	if lvl == "" {
		lvl = "brief"
	}
	root := newElem("services-security-associations-information", [2]string{"xmlns", junosNS("junos-kmd")}, style(lvl))
	spi := func(v uint32) string {
		if m.GetHex() {
			return fmt.Sprintf("0x%08x", v)
		}
		return fmt.Sprint(v)
	}
	enabled := func(b bool) string {
		if b {
			return "enabled"
		}
		return "disabled"
	}
	for _, ss := range m.GetServiceSets() {
		ri := ss.GetRoutingInstance()
		if ri == "" {
			ri = "default"
		}
		for _, t := range ss.GetTunnels() {
			blk := root.sub("services-security-associations-block")
			blk.add("svc-set-name", ss.GetServiceSet())
			blk.add("outside-service-interface-routing-instance", ri)
			ti := blk.sub("sa-tunnel-information")
			ti.add("sa-rule-name", t.GetRule())
			ti.add("sa-term-name", t.GetTerm())
			ti.add("sa-tunnel-index", t.GetTunnelIndex())
			ti.add("sa-local-gateway", t.GetLocalGateway())
			ti.add("sa-remote-gateway", t.GetRemoteGateway())
			ti.add("sa-inside-interface", t.GetInsideInterface())
			ti.add("sa-tunnel-mtu", t.GetTunnelMtu())
			if lvl != "brief" {
				ti.add("sa-udp-encapsulate", enabledWord(t.GetUdpEncapsulate()))
				ti.add("sa-udp-dst-port", t.GetUdpDestPort())
				ti.add("sa-nat-t-detected", map[bool]string{true: "Yes", false: "No"}[t.GetNattDetected()])
				ti.add("sa-nat-t-keepalive", t.GetNattKeepalive())
				ti.add("sa-local-identity", t.GetLocalIdentity())
				ti.add("sa-remote-identity", t.GetRemoteIdentity())
			}
			if lvl == "extensive" {
				ti.opt("sa-primary-remote-gateway", t.GetPrimaryGateway())
				ti.opt("sa-primary-remote-gateway-state", t.GetPrimaryState())
				ti.opt("sa-backup-remote-gateway", t.GetBackupGateway())
				ti.opt("sa-backup-remote-gateway-state", t.GetBackupState())
				ti.add("sa-failover-count", t.GetFailovers())
			}
			for _, s := range t.GetSas() {
				e := blk.sub("security-associations")
				e.add("sa-direction", s.GetDirection())
				e.add("sa-spi", spi(s.GetSpi()))
				e.add("sa-aux-spi", spi(s.GetAuxSpi()))
				e.add("sa-mode", s.GetMode())
				e.add("sa-type", s.GetType())
				e.add("sa-state", s.GetState())
				e.add("sa-protocol", s.GetProtocol())
				if lvl == "brief" {
					continue
				}
				e.add("sa-authentication-algorithm", s.GetAuthentication())
				e.add("sa-encryption-algorithm", s.GetEncryption())
				if s.GetSoftLifetimeSeconds() != 0 {
					e.add("sa-soft-lifetime", expires(s.GetSoftLifetimeSeconds()))
				}
				if s.GetHardLifetimeSeconds() != 0 {
					e.add("sa-hard-lifetime", expires(s.GetHardLifetimeSeconds()))
				}
				e.add("sa-anti-replay-service", enabled(s.GetAntiReplay()))
				e.add("sa-replay-window-size", s.GetReplayWindow())
				e.add("sa-copy-tos-from-inner-ip-header", enabled(s.GetCopyTos()))
				if !s.GetCopyTos() {
					e.add("sa-tos-value", s.GetTos())
				}
				e.add("sa-copy-ttl-from-inner-ip-header", enabled(s.GetCopyTtl()))
				if !s.GetCopyTtl() {
					e.add("sa-ttl-value", s.GetTtl())
				}
				if lvl == "extensive" {
					e.add("sa-sequence-number", s.GetSequence())
				}
			}
		}
	}
	return root
}

// ipsecStatisticsTree: ipsec-total-statistics-information with one
// ipsec-statistics-block per PIC and service set (per tunnel with
// detail) holding esp-statistics, ah-statistics and error-statistics [T].
func ipsecStatisticsTree(m *pb.IPsecStatistics) *elem {
	lvl := "brief"
	if m.GetDetail() {
		lvl = "detail"
	}
	root := newElem("ipsec-total-statistics-information", [2]string{"xmlns", junosNS("junos-kmd")}, style(lvl))
	for _, b := range m.GetBlocks() {
		blk := root.sub("ipsec-statistics-block")
		blk.add("sp-name", b.GetPic())
		blk.add("service-set-name", b.GetServiceSet())
		if m.GetDetail() {
			blk.add("local-gateway", b.GetLocalGateway())
			blk.add("remote-gateway", b.GetRemoteGateway())
			blk.add("tunnel-index", b.GetTunnelIndex())
		}
		c := b.GetCounters()
		esp := blk.sub("esp-statistics")
		esp.add("esp-encrypted-bytes", c.GetEspEncryptedBytes())
		esp.add("esp-decrypted-bytes", c.GetEspDecryptedBytes())
		esp.add("esp-encrypted-packets", c.GetEspEncryptedPackets())
		esp.add("esp-decrypted-packets", c.GetEspDecryptedPackets())
		ah := blk.sub("ah-statistics")
		ah.add("ah-input-bytes", c.GetAhInputBytes())
		ah.add("ah-output-bytes", c.GetAhOutputBytes())
		ah.add("ah-input-packets", c.GetAhInputPackets())
		ah.add("ah-output-packets", c.GetAhOutputPackets())
		er := blk.sub("error-statistics")
		er.add("ah-authentication-failures", c.GetAhAuthenticationFailures())
		er.add("replay-errors", c.GetReplayErrors())
		er.add("esp-authentication-failures", c.GetEspAuthenticationFailures())
		er.add("esp-decryption-failures", c.GetEspDecryptionFailures())
		er.add("bad-headers", c.GetBadHeaders())
		er.add("bad-trailers", c.GetBadTrailers())
		er.add("replay-before-window-drops", c.GetReplayBeforeWindowDrops())
		er.add("replayed-packets", c.GetReplayedPackets())
		er.add("rule-lookup-failures", c.GetRuleLookupFailures())
		er.add("no-sa", c.GetNoSa())
		er.add("ip-integrity-failures", c.GetIpIntegrityFailures())
		er.add("exceeds-tunnel-mtu", c.GetExceedsTunnelMtu())
		er.add("flow-errors", c.GetFlowErrors())
		er.add("misc-errors", c.GetMiscErrors())
		er.add("invalid-spi", c.GetInvalidSpi())
		er.add("ts-check-failures", c.GetTsCheckFailures())
		er.add("discards", c.GetDiscards())
	}
	return root
}
