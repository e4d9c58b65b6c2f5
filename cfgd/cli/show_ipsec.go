package cli

// Text of `show services ipsec-vpn ipsec security-associations
// [brief|detail|extensive] [service-set S] [hex]` and `show services
// ipsec-vpn ipsec statistics [brief|detail]` (SPEC section 4; XML roots
// services-security-associations-information and
// ipsec-total-statistics-information).
//
// Times: SA lifetimes are relative, "Soft lifetime: Expires in 26485
// seconds", from the seconds left that fwdd computed when it answered; a
// lifetime fwdd left at 0 (none configured) is not shown, a negative one
// prints "Expired". now is accepted only so every renderer has the same
// shape.

import (
	"fmt"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// renderIPsecSAs prints, per service set, its tunnels and their SAs.
//
// Brief:
//
//	Service set: ss1, IKE Routing-instance: default
//
//	  Rule: vpn-rule, Term: t1, Tunnel index: 1
//	  Local gateway: 192.0.2.1, Remote gateway: 192.0.2.2
//	  IPSec inside interface: ms-1/2/0.1, Tunnel MTU: 1500
//	    Direction SPI         AUX-SPI     Mode       Type     Protocol
//	    inbound   2128590715  0           tunnel     dynamic  ESP
//
// detail adds the identities, UDP encapsulation and NAT-T per tunnel and
// one block per SA; extensive adds the primary and backup gateways, their
// states, failovers and the SA sequence numbers.
func renderIPsecSAs(m *pb.IPsecSecurityAssociations, now time.Time) []string {
	level := m.GetLevel()
	if level == "" {
		level = "brief"
	}
	spi := func(v uint32) string {
		if m.GetHex() {
			return fmt.Sprintf("0x%08x", v)
		}
		return fmt.Sprint(v)
	}
	var l showLines
	for i, ss := range m.GetServiceSets() {
		if i > 0 {
			l.blank()
		}
		ri := ss.GetRoutingInstance()
		if ri == "" {
			ri = "default"
		}
		l.add("Service set: %s, IKE Routing-instance: %s", dash(ss.GetServiceSet()), ri)
		for _, t := range ss.GetTunnels() {
			l.blank()
			l.add("  Rule: %s, Term: %s, Tunnel index: %d", dash(t.GetRule()), dash(t.GetTerm()), t.GetTunnelIndex())
			l.add("  Local gateway: %s, Remote gateway: %s", dash(t.GetLocalGateway()), dash(t.GetRemoteGateway()))
			mtu := "-"
			if t.GetTunnelMtu() != 0 {
				mtu = fmt.Sprint(t.GetTunnelMtu())
			}
			l.add("  IPSec inside interface: %s, Tunnel MTU: %s", dash(t.GetInsideInterface()), mtu)
			if level == "brief" {
				// Junos's column widths: "Direction SPI         AUX-SPI     Mode       Type     Protocol".
				widths := []int{8, 10, 10, 9, 7, 0}
				rows := [][]string{}
				for _, s := range t.GetSas() {
					row := []string{dash(s.GetDirection()), spi(s.GetSpi()), spi(s.GetAuxSpi()), dash(s.GetMode()), dash(s.GetType()), dash(s.GetProtocol())}
					widen(widths, row...)
					rows = append(rows, row)
				}
				l = append(l, "    "+columns(widths, "Direction", "SPI", "AUX-SPI", "Mode", "Type", "Protocol"))
				for _, r := range rows {
					l = append(l, "    "+columns(widths, r...))
				}
				continue
			}
			l.add("  Local identity: %s", dash(t.GetLocalIdentity()))
			l.add("  Remote identity: %s", dash(t.GetRemoteIdentity()))
			port := "-"
			if t.GetUdpDestPort() != 0 {
				port = fmt.Sprint(t.GetUdpDestPort())
			}
			l.add("  UDP encapsulate: %s, UDP Destination port: %s", enabledWord(t.GetUdpEncapsulate()), port)
			natt := "Not Detected"
			if t.GetNattDetected() {
				natt = "Detected"
			}
			l.add("  NATT Detection: %s, NATT keepalive interval: %d", natt, t.GetNattKeepalive())
			if level == "extensive" {
				primary := t.GetPrimaryGateway()
				if primary == "" {
					primary = t.GetRemoteGateway()
				}
				l.add("  Primary remote gateway: %s, State: %s", dash(primary), dash(t.GetPrimaryState()))
				l.add("  Backup remote gateway: %s, State: %s", dash(t.GetBackupGateway()), dash(t.GetBackupState()))
				l.add("  Failovers: %d", t.GetFailovers())
			}
			for _, s := range t.GetSas() {
				l.blank()
				l.add("    Direction: %s, SPI: %s, AUX-SPI: %s", dash(s.GetDirection()), spi(s.GetSpi()), spi(s.GetAuxSpi()))
				l.add("    Mode: %s, Type: %s, State: %s", dash(s.GetMode()), dash(s.GetType()), capitalized(s.GetState()))
				l.add("    Protocol: %s, Authentication: %s, Encryption: %s", dash(s.GetProtocol()), dash(s.GetAuthentication()), dash(s.GetEncryption()))
				if s.GetSoftLifetimeSeconds() != 0 {
					l.add("    Soft lifetime: %s", expires(s.GetSoftLifetimeSeconds()))
				}
				if s.GetHardLifetimeSeconds() != 0 {
					l.add("    Hard lifetime: %s", expires(s.GetHardLifetimeSeconds()))
				}
				if s.GetDirection() == "outbound" {
					// The outer header's TOS and TTL are set on
					// encapsulation only (SPEC section 3, fwdd).
					if s.GetCopyTos() {
						l.add("    Copy-TOS from inner IP header: Enabled")
					} else {
						l.add("    Copy-TOS from inner IP header: Disabled, TOS value: %d", s.GetTos())
					}
					if s.GetCopyTtl() {
						l.add("    Copy-TTL from inner IP header: Enabled")
					} else {
						l.add("    Copy-TTL from inner IP header: Disabled, TTL value: %d", s.GetTtl())
					}
				} else {
					// Anti-replay is a receiver's check, RFC 4303
					// section 3.4.3.
					if s.GetAntiReplay() {
						l.add("    Anti-replay service: Enabled, Replay window size: %d", s.GetReplayWindow())
					} else {
						l.add("    Anti-replay service: Disabled")
					}
				}
				if level == "extensive" {
					l.add("    Sequence number: %d", s.GetSequence())
				}
			}
		}
	}
	return l
}

// renderIPsecStatistics prints totals per PIC and service set (brief) or
// one block per tunnel (detail), in the SRX `show security ipsec
// statistics` layout SPEC section 4 gives, plus the 24.4 error counters.
func renderIPsecStatistics(m *pb.IPsecStatistics, now time.Time) []string {
	var l showLines
	for i, b := range m.GetBlocks() {
		if i > 0 {
			l.blank()
		}
		l.add("PIC: %s, Service set: %s", dash(b.GetPic()), dash(b.GetServiceSet()))
		if m.GetDetail() {
			l.add("  Local gateway: %s, Remote gateway: %s, Tunnel index: %d", dash(b.GetLocalGateway()), dash(b.GetRemoteGateway()), b.GetTunnelIndex())
		}
		c := b.GetCounters()
		l.blank()
		l.add("ESP Statistics:")
		l.add("  Encrypted bytes:    %20d", c.GetEspEncryptedBytes())
		l.add("  Decrypted bytes:    %20d", c.GetEspDecryptedBytes())
		l.add("  Encrypted packets:  %20d", c.GetEspEncryptedPackets())
		l.add("  Decrypted packets:  %20d", c.GetEspDecryptedPackets())
		l.add("AH Statistics:")
		l.add("  Input bytes:        %20d", c.GetAhInputBytes())
		l.add("  Output bytes:       %20d", c.GetAhOutputBytes())
		l.add("  Input packets:      %20d", c.GetAhInputPackets())
		l.add("  Output packets:     %20d", c.GetAhOutputPackets())
		l.add("Errors:")
		l.add("  AH authentication failures: %d, Replay errors: %d", c.GetAhAuthenticationFailures(), c.GetReplayErrors())
		l.add("  ESP authentication failures: %d, ESP decryption failures: %d", c.GetEspAuthenticationFailures(), c.GetEspDecryptionFailures())
		l.add("  Bad headers: %d, Bad trailers: %d", c.GetBadHeaders(), c.GetBadTrailers())
		// The counters 24.4 added ([Yr] ipsec-total-statistics-information).
		l.add("  Replay before window drops: %d, Replayed packets: %d", c.GetReplayBeforeWindowDrops(), c.GetReplayedPackets())
		l.add("  Rule lookup failures: %d, No SA: %d", c.GetRuleLookupFailures(), c.GetNoSa())
		l.add("  IP integrity failures: %d, Exceeds tunnel MTU: %d", c.GetIpIntegrityFailures(), c.GetExceedsTunnelMtu())
		l.add("  Invalid SPI: %d, TS check failures: %d", c.GetInvalidSpi(), c.GetTsCheckFailures())
		l.add("  Flow errors: %d, Misc errors: %d, Discards: %d", c.GetFlowErrors(), c.GetMiscErrors(), c.GetDiscards())
	}
	return l
}
