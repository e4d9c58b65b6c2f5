package cli

// Text of `show services ipsec-vpn ike security-associations [brief|detail]`
// and `show services ipsec-vpn ike statistics` (SPEC section 4; XML root
// ike-security-associations-information and
// ike-security-associations-statistics).
//
// Times: the IKE SA lifetime is relative, "Lifetime: Expires in 2214
// seconds", from expires_in_seconds as kmd computed it when it answered;
// now is not needed and is accepted only so every renderer has the same
// shape.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// renderIKESAs prints the brief table or the detail blocks.
//
// Brief (Junos MX layout):
//
//	Remote Address  State         Initiator cookie  Responder cookie  Exchange type
//	192.0.2.2       Matured       8a6d0c6b1e2f3a41  0f3e2d1c4b5a6978  IKEv2
func renderIKESAs(m *pb.IKESecurityAssociations, now time.Time) []string {
	if m.GetDetail() {
		return renderIKESADetail(m)
	}
	if len(m.GetSas()) == 0 {
		return nil
	}
	head := []string{"Remote Address", "State", "Initiator cookie", "Responder cookie", "Exchange type"}
	// The State column is as wide as "Not matured" plus a margin, as Junos
	// keeps it, so the table does not shift when a peer matures.
	widths := []int{len(head[0]), 12, 16, 16, 0}
	rows := [][]string{}
	for _, sa := range m.GetSas() {
		row := []string{dash(sa.GetRemoteAddress()), capitalized(sa.GetState()), dash(sa.GetInitiatorCookie()), dash(sa.GetResponderCookie()), dash(sa.GetExchangeType())}
		widen(widths, row...)
		rows = append(rows, row)
	}
	out := []string{columns(widths, head...)}
	for _, r := range rows {
		out = append(out, columns(widths, r...))
	}
	return out
}

// renderIKESADetail prints one block per IKE SA, the Junos detail layout
// (field order from the 13.x output table and Toby samples).
func renderIKESADetail(m *pb.IKESecurityAssociations) []string {
	var l showLines
	for i, sa := range m.GetSas() {
		if i > 0 {
			l.blank()
		}
		head := "IKE peer " + dash(sa.GetRemoteAddress())
		if sa.GetIndex() != 0 {
			head += fmt.Sprintf(", Index %d", sa.GetIndex())
		}
		l.add("%s", head)
		l.add("  Role: %s, State: %s", dash(sa.GetRole()), capitalized(sa.GetState()))
		l.add("  Initiator cookie: %s, Responder cookie: %s", dash(sa.GetInitiatorCookie()), dash(sa.GetResponderCookie()))
		l.add("  Exchange type: %s, Authentication method: %s", dash(sa.GetExchangeType()), dash(sa.GetAuthenticationMethod()))
		var where []string
		if s := sa.GetServiceSet(); s != "" {
			where = append(where, "Service set: "+s)
		}
		if s := sa.GetRoutingInstance(); s != "" {
			where = append(where, "Routing instance: "+s)
		}
		if s := sa.GetGatewayInterface(); s != "" {
			where = append(where, "Gateway interface: "+s)
		}
		if len(where) > 0 {
			l.add("  %s", strings.Join(where, ", "))
		}
		l.add("  Local: %s, Remote: %s", hostPort(sa.GetLocalAddress(), sa.GetLocalPort()), hostPort(sa.GetRemoteAddress(), sa.GetRemotePort()))
		if s := sa.GetLocalIdentity(); s != "" {
			l.add("  Local identity: %s", s)
		}
		if s := sa.GetRemoteIdentity(); s != "" {
			l.add("  Remote identity: %s", s)
		}
		nat := "Not detected"
		if sa.GetNatDetected() {
			nat = "Detected"
		}
		l.add("  NAT traversal: %s", nat)
		if sa.GetState() == "matured" || sa.GetExpiresInSeconds() != 0 {
			l.add("  Lifetime: %s", expires(sa.GetExpiresInSeconds()))
		} else {
			l.add("  Lifetime: Not established") // no "Expires in 0 seconds" before the SA has a lifetime
		}
		l.add("  Algorithms:")
		l.add("   Authentication        : %s", dash(sa.GetAuthenticationAlgorithm()))
		l.add("   Encryption            : %s", dash(sa.GetEncryptionAlgorithm()))
		l.add("   Pseudo random function: %s", dash(sa.GetPrfAlgorithm()))
		l.add("   Diffie-Hellman group  : %s", dash(sa.GetDhGroup()))
		l.add("  Traffic statistics:")
		l.add("   Input  bytes  : %20d", sa.GetBytesIn())
		l.add("   Output bytes  : %20d", sa.GetBytesOut())
		l.add("   Input  packets: %20d", sa.GetPacketsIn())
		l.add("   Output packets: %20d", sa.GetPacketsOut())
		l.add("   Invalid SPIs  : %20d", sa.GetInvalidSpis())
		if f := sa.GetFlags(); len(f) > 0 {
			l.add("  Flags: %s", strings.Join(f, ", "))
		}
		l.add("  IPSec security associations: %d created, %d deleted", sa.GetIpsecSasCreated(), sa.GetIpsecSasDeleted())
		l.add("  Rekeys: %d", sa.GetRekeys())
		inProgress := 0
		for _, p := range sa.GetPhase2() {
			if p.GetInProgress() {
				inProgress++
			}
		}
		l.add("  Phase 2 negotiations in progress: %d", inProgress)
		for _, p := range sa.GetPhase2() {
			l.blank()
			l.add("    Negotiation type: %s, Role: %s, Message ID: %d", dash(p.GetType()), dash(p.GetRole()), p.GetMessageId())
			l.add("    Local: %s, Remote: %s", dash(p.GetLocal()), dash(p.GetRemote()))
			l.add("    Local identity: %s", dash(p.GetLocalIdentity()))
			l.add("    Remote identity: %s", dash(p.GetRemoteIdentity()))
		}
	}
	return l
}

// ikeCounters are the IKEStatistics.Peer.counters keys kmd fills
// (kmd/server/op.go), in the order and with the wording they are shown. A
// key kmd sends that is not listed here is still shown, after these, in
// key order, with its hyphens turned into spaces: a new counter is never
// hidden.
var ikeCounters = []struct{ key, label string }{
	{"delete-payloads-received", "Delete payloads received"},
	{"delete-payloads-sent", "Delete payloads sent"},
	// IKEv2 liveness check, RFC 7296 section 2.4: an empty INFORMATIONAL.
	{"dpd-requests-received", "DPD requests received"},
	{"dpd-requests-sent", "DPD requests sent"},
	{"dpd-responses-received", "DPD responses received"},
	// INVALID_SPI, RFC 7296 section 3.10.1.
	{"invalid-spi", "Invalid SPI"},
	// CREATE_CHILD_SA rekeys, RFC 7296 sections 2.8 and 1.3.3.
	{"ikev2-rekeys", "IKEv2 rekeys"},
	{"ipsec-sas-created", "IPsec SAs created"},
	{"ipsec-sas-deleted", "IPsec SAs deleted"},
	// Exchange engine (RFC 7296 section 2.1).
	{"requests-sent", "Requests sent"},
	{"responses-sent", "Responses sent"},
	{"retransmits", "Retransmissions"},
	{"retransmits-answered", "Retransmissions answered"},
}

// renderIKEStatistics prints one block per peer:
//
//	IKE peer 192.0.2.2, Local gateway: 192.0.2.1
//	  Delete payloads received:                          0
func renderIKEStatistics(m *pb.IKEStatistics, now time.Time) []string {
	var l showLines
	for i, p := range m.GetPeers() {
		if i > 0 {
			l.blank()
		}
		head := "IKE peer " + dash(p.GetRemoteAddress())
		if s := p.GetLocalAddress(); s != "" {
			head += ", Local gateway: " + s
		}
		l.add("%s", head)
		c := p.GetCounters()
		type row struct {
			label string
			v     uint64
		}
		var rows []row
		known := map[string]bool{}
		for _, k := range ikeCounters {
			known[k.key] = true
			rows = append(rows, row{k.label, c[k.key]})
		}
		var extra []string
		for k := range c {
			if !known[k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			rows = append(rows, row{capitalized(strings.ReplaceAll(k, "-", " ")), c[k]})
		}
		w := 0
		for _, r := range rows {
			w = max(w, len(r.label)+1)
		}
		for _, r := range rows {
			l.add("  %-*s %12d", w, r.label+":", r.v)
		}
	}
	return l
}
