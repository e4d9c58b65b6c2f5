package server

import (
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/proto/pb"
)

func v1config(local, remote string, mode pb.EstablishTunnels, src, dst string) *pb.Config {
	c := config(local, remote, "s3cret", mode, src, dst)
	ike := c.IpsecVpn.Ike
	ike.Policies[0].Version = 0 // Junos's default: IKEv1
	ike.Proposals[0] = &pb.IKEProposal{Name: "p1", DhGroup: "group2", AuthenticationAlgorithm: "sha1", EncryptionAlgorithm: "3des-cbc"}
	c.IpsecVpn.Ipsec.Proposals[0] = &pb.IPsecProposal{Name: "e1", Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, EncryptionAlgorithm: "3des-cbc", AuthenticationAlgorithm: "hmac-md5-96"}
	c.IpsecVpn.Ipsec.Policies[0].PerfectForwardSecrecyKeys = "group1"
	return c
}

// Two kmds with an IKEv1 configuration (no version statement) negotiate
// main mode and quick mode with PFS over the fake fwdd bus and install
// matching ESP SAs, inbound before outbound; deleting the tunnel by
// configuration removes them on both sides.
func TestTwoKMDsIKEv1(t *testing.T) {
	l, r, lb, rb := pair(t)
	lc := v1config("192.0.2.1", "198.51.100.1", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	rc := v1config("198.51.100.1", "192.0.2.1", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24")
	ctx := t.Context()
	if err := r.Apply(ctx, nil, rc); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "installs", func() bool { a, _ := lb.count(); b, _ := rb.count(); return a == 2 && b == 2 })
	lin, lout := lb.installs[0].Sas[0], lb.installs[1].Sas[0]
	rin, rout := rb.installs[0].Sas[0], rb.installs[1].Sas[0]
	if lin.Direction != pb.Direction_DIRECTION_INBOUND || lout.Direction != pb.Direction_DIRECTION_OUTBOUND || rin.Direction != pb.Direction_DIRECTION_INBOUND {
		t.Fatal("not inbound before outbound")
	}
	if lin.Spi != rout.Spi || string(lin.EncryptionKey) != string(rout.EncryptionKey) || string(lout.AuthenticationKey) != string(rin.AuthenticationKey) {
		t.Fatal("keys of the two sides differ")
	}
	if lin.EncryptionAlgorithm != "3des-cbc" || lin.AuthenticationAlgorithm != "hmac-md5-96" || len(lin.EncryptionKey) != 24 || len(lin.AuthenticationKey) != 16 ||
		lin.Encapsulation != pb.Encapsulation_ENCAPSULATION_ESP || lin.Rule != "r1" || lin.LocalIdentity != "192.0.2.1" || lin.RemoteIdentity != "198.51.100.1" {
		t.Fatalf("SA %+v", lin)
	}
	rep := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations detail")})
	sas := rep.GetIkeSecurityAssociations().GetSas()
	if rep.Error != "" || len(sas) != 1 || sas[0].State != "matured" || sas[0].ExchangeType != "Main" || sas[0].Role != "Initiator" ||
		sas[0].EncryptionAlgorithm != "3des-cbc" || sas[0].DhGroup != "2" || len(sas[0].Phase2) != 1 {
		t.Fatalf("show: %v", rep)
	}
	// A restarted fwdd gets both SAs back, the outbound one past its mark.
	if sync := l.Sync(&pb.SASyncRequest{Marks: []*pb.SequenceMark{{Sa: &pb.SAKey{Spi: lout.Spi}, Sequence: 1000}}}); len(sync.Sas) != 2 || sync.Sas[1].InitialSequence != 1000+seqMargin || sync.Sas[0].Spi != lin.Spi {
		t.Fatalf("sync: %v", sync.Sas)
	}
	// fwdd's soft lifetime rekeys by a new quick mode; the new outbound
	// SA replaces the old one.
	l.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, Sa: &pb.SAKey{Spi: lin.Spi}})
	waitFor(t, "rekey", func() bool { a, _ := lb.count(); return a == 4 })
	if lb.installs[3].ReplacesSpi != lout.Spi {
		t.Fatalf("rekey replaces %08x, want %08x", lb.installs[3].ReplacesSpi, lout.Spi)
	}
	// show ike statistics counts the IKEv1 tunnel (two quick modes, one
	// phase 1); clear starts it again from zero. The responder deletes
	// the replaced pair after the grace; the counters only grow.
	stats := func() map[string]uint64 {
		rep := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike statistics")})
		ps := rep.GetIkeStatistics().GetPeers()
		if rep.Error != "" || len(ps) != 1 || ps[0].RemoteAddress != "198.51.100.1" {
			t.Fatalf("statistics: %v", rep)
		}
		return ps[0].Counters
	}
	waitFor(t, "statistics", func() bool { c := stats(); return c["ipsec-sas-created"] == 2 })
	if c := stats(); c["ikev1-phase1-sas-established"] != 1 || c["ikev1-packets-sent"] < 5 || c["ikev1-packets-received"] < 4 {
		t.Fatalf("counters %v", c)
	}
	if rep := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("clear services ipsec-vpn ike statistics")}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if c := stats(); c["ipsec-sas-created"] != 0 || c["ikev1-phase1-sas-established"] != 0 {
		t.Fatalf("after clear: %v", c)
	}
	// Removing the tunnel from the configuration deletes every SA on both
	// sides (DELETE informational).
	lc2 := v1config("192.0.2.1", "198.51.100.1", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	lc2.ServiceSets[0].IpsecVpnRules = nil
	if err := l.Apply(ctx, lc, lc2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deletes", func() bool { _, a := lb.count(); _, b := rb.count(); return a >= 2 && b >= 2 })
}

// After a kmd restart, fwdd still runs the previous kmd's SAs: the new
// IKEv1 tunnel's outbound SA takes over from them, and they are deleted
// after the grace.
func TestIKEv1RestartMakeBeforeBreak(t *testing.T) {
	l, r, lb, _ := pair(t)
	l.RestartGrace = 50 * time.Millisecond
	lc := v1config("192.0.2.1", "198.51.100.1", pb.EstablishTunnels_ESTABLISH_TUNNELS_ON_TRAFFIC, "10.0.0.0/24", "10.1.0.0/24")
	rc := v1config("198.51.100.1", "192.0.2.1", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24")
	ctx := t.Context()
	r.Apply(ctx, nil, rc)
	l.mu.Lock()
	l.tunnel("ss1/r1/t1").previous = []*pb.SAKey{{Spi: 0x1111, Direction: pb.Direction_DIRECTION_INBOUND}, {Spi: 0x2222, Direction: pb.Direction_DIRECTION_OUTBOUND}}
	l.applied = true
	l.mu.Unlock()
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "installs", func() bool { a, _ := lb.count(); return a == 2 })
	if got := lb.installs[1].ReplacesSpi; got != 0x2222 {
		t.Fatalf("outbound replaces %#x, want the previous kmd's 0x2222", got)
	}
	waitFor(t, "previous SAs deleted", func() bool { _, d := lb.count(); return d == 1 })
}

// An IKEv1 policy with rsa-signatures and a DN local-id maps onto
// signature transforms (RFC 2409 section 5.1) and needs no pre-shared
// key; ecdsa-signatures-256 onto method 9 (RFC 4754).
func TestV1ConfigSignatures(t *testing.T) {
	c := v1config("192.0.2.1", "198.51.100.1", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	c.IpsecVpn.Ike.Proposals[0].AuthenticationMethod = "rsa-signatures"
	pol := c.IpsecVpn.Ike.Policies[0]
	pol.PreSharedKey, pol.LocalCertificate = nil, "gw"
	pol.LocalId = &pb.IKEIdentity{Kind: &pb.IKEIdentity_DistinguishedName{DistinguishedName: &pb.DistinguishedName{}}}
	ps, err := Peers(c)
	if err != nil {
		t.Fatal(err)
	}
	v := ps[0].V1
	if v == nil || ps[0].cert == nil || !ps[0].cert.subjectID || len(v.Proposals) != 1 || v.Proposals[0].Auth != isakmp.AuthRSA || v.LocalID.Type != 0 {
		t.Fatalf("%+v %+v", v, ps[0].cert)
	}
	c.IpsecVpn.Ike.Proposals[0].AuthenticationMethod = "ecdsa-signatures-256"
	if ps, err = Peers(c); err != nil || ps[0].V1.Proposals[0].Auth != isakmp.AuthECDSA256 {
		t.Fatalf("ecdsa: %v", err)
	}
	// Without local-certificate, the commit fails.
	pol.LocalCertificate = ""
	if _, err := Peers(c); err == nil || !strings.Contains(err.Error(), "local-certificate") {
		t.Fatalf("err = %v", err)
	}
	// A pre-shared-key proposal still needs the key.
	c.IpsecVpn.Ike.Proposals[0].AuthenticationMethod = "pre-shared-keys"
	pol.LocalId = nil
	if _, err := Peers(c); err == nil || !strings.Contains(err.Error(), "pre-shared-key") {
		t.Fatalf("err = %v", err)
	}
}

// rawECDSA turns pkid's DER signatures into RFC 4754's r|s.
func TestRawECDSA(t *testing.T) {
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{big.NewInt(1), big.NewInt(0x0203)})
	got, err := rawECDSA(der, 32)
	if err != nil || len(got) != 64 || got[31] != 1 || got[62] != 2 || got[63] != 3 {
		t.Fatalf("%x %v", got, err)
	}
	if _, err := rawECDSA([]byte{0x30, 0x01}, 32); err == nil {
		t.Fatal("bad DER accepted")
	}
	big1 := new(big.Int).Lsh(big.NewInt(1), 300)
	der, _ = asn1.Marshal(struct{ R, S *big.Int }{big1, big1})
	if _, err := rawECDSA(der, 32); err == nil {
		t.Fatal("oversized r accepted")
	}
}
