package server

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
	"github.com/sitesec/sitesec/proto/pb"
)

func TestPeers(t *testing.T) {
	base := func() *pb.Config {
		return config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	}
	tests := []struct {
		name   string
		mutate func(c *pb.Config)
		err    string // substring; "" means no error
		check  func(t *testing.T, p []*Peer)
	}{
		{"ok", func(*pb.Config) {}, "", func(t *testing.T, p []*Peer) {
			if len(p) != 1 || p[0].Key != "ss1/r1/t1" || p[0].Establish != Immediately || p[0].IKE.PFSGroup != 14 {
				t.Fatalf("%+v", p[0])
			}
			c := p[0].IKE
			if c.IKELifetime != time.Hour || c.ChildLifetime != 8*time.Hour || c.LocalTS[0].Start.String() != "10.0.0.0" || c.RemoteTS[0].End.String() != "10.1.0.255" {
				t.Fatalf("%+v", c)
			}
			if p[0].TunnelIndex != 1 || !c.NATTraversal || c.DPDInterval != 0 {
				t.Fatal("defaults")
			}
		}},
		{"unsupported dh group", func(c *pb.Config) { c.IpsecVpn.Ike.Proposals[0].DhGroup = "group3" },
			"[edit services ipsec-vpn ike proposal p1] dh-group group3 is not supported", nil},
		{"missing ike policy", func(c *pb.Config) { c.IpsecVpn.Ike.Policies = nil }, "Referenced IKE policy must be defined", nil},
		{"missing ipsec policy", func(c *pb.Config) { c.IpsecVpn.Ipsec.Policies = nil }, "Referenced IPSec policy must be defined", nil},
		{"ikev1 refuses an IKEv2-only transform", func(c *pb.Config) { c.IpsecVpn.Ike.Policies[0].Version = 1 },
			"[edit services ipsec-vpn ike proposal p1] encryption-algorithm aes-256-gcm is not available with IKEv1", nil},
		{"ikev1 is the default version, with Junos's defaults", func(c *pb.Config) {
			c.IpsecVpn.Ike.Policies[0].Version = 0
			c.IpsecVpn.Ike.Proposals[0] = &pb.IKEProposal{Name: "p1"}
			c.IpsecVpn.Ipsec.Proposals[0] = &pb.IPsecProposal{Name: "e1"}
			c.IpsecVpn.Ipsec.Policies[0].PerfectForwardSecrecyKeys = "group2"
		}, "", func(t *testing.T, p []*Peer) {
			v := p[0].V1
			if v == nil || v.Aggressive || len(v.Proposals) != 1 || len(v.ESP) != 1 {
				t.Fatalf("%+v", v)
			}
			if got := v.Proposals[0].String(); got != "3des-cbc/sha1/group1" || v.Lifetime != time.Hour {
				t.Fatalf("phase 1 %s %v", got, v.Lifetime)
			}
			if e := v.ESP[0]; e.EncryptionName() != "3des-cbc" || e.IntegrityName() != "hmac-sha1-96" || e.Group != 2 || v.ChildLifetime != 8*time.Hour {
				t.Fatalf("phase 2 %+v", e)
			}
			if v.LocalTS.Start.String() != "10.0.0.0" || v.RemoteTS.End.String() != "10.1.0.255" || string(v.PSK) == "" {
				t.Fatalf("%+v", v)
			}
		}},
		{"ikev2 with empty proposals runs Junos's defaults, 3DES included", func(c *pb.Config) {
			c.IpsecVpn.Ike.Policies[0].Version = 2
			c.IpsecVpn.Ike.Proposals[0] = &pb.IKEProposal{Name: "p1"}
			c.IpsecVpn.Ipsec.Proposals[0] = &pb.IPsecProposal{Name: "e1"}
			c.IpsecVpn.Ipsec.Policies[0].PerfectForwardSecrecyKeys = "group1"
		}, "", func(t *testing.T, p []*Peer) {
			c := p[0].IKE
			ike, err := transform.FromProposal(c.IKEProposals[0])
			if err != nil || ike.EncryptionName() != "3des-cbc" || ike.IntegrityName() != "hmac-sha1-96" || ike.DH != 1 {
				t.Fatalf("IKE %+v %v", ike, err)
			}
			var enc, integ, dh uint16
			for _, tr := range c.ESPProposals[0].Transforms {
				switch tr.Type {
				case message.TransformENCR:
					enc = tr.ID
				case message.TransformINTEG:
					integ = tr.ID
				case message.TransformDH:
					dh = tr.ID
				}
			}
			if enc != message.Encr3DES || integ != message.IntegHMACSHA196 || dh != 1 || c.PFSGroup != 1 {
				t.Fatalf("ESP %+v, PFS %d", c.ESPProposals[0], c.PFSGroup)
			}
		}},
		{"ikev1 aggressive, no proposals: Junos's standard sets", func(c *pb.Config) {
			c.IpsecVpn.Ike.Policies[0].Version = 1
			c.IpsecVpn.Ike.Policies[0].Mode = "aggressive"
			c.IpsecVpn.Ike.Policies[0].Proposals = nil
			c.IpsecVpn.Ipsec.Policies[0].Proposals = nil
		}, "", func(t *testing.T, p []*Peer) {
			v := p[0].V1
			if !v.Aggressive || len(v.Proposals) != 2 || v.Proposals[1].String() != "3des-cbc/sha1/group2" || len(v.ESP) != 2 || v.ESP[0].Group != 14 {
				t.Fatalf("%+v", v)
			}
		}},
		{"no psk", func(c *pb.Config) { c.IpsecVpn.Ike.Policies[0].PreSharedKey = nil }, "Either pre-shared-key or local-certificate", nil},
		{"ah over ikev2 (issue 13)", func(c *pb.Config) {
			c.IpsecVpn.Ike.Policies[0].Version = 2
			c.IpsecVpn.Ipsec.Proposals[0].Protocol = pb.IPsecProtocol_IPSEC_PROTOCOL_AH
			c.IpsecVpn.Ipsec.Proposals[0].EncryptionAlgorithm = ""
			c.IpsecVpn.Ipsec.Proposals[0].AuthenticationAlgorithm = "hmac-sha-256-128"
		}, "", func(t *testing.T, p []*Peer) {
			ps := p[0].IKE.ESPProposals
			if len(ps) != 1 || ps[0].Protocol != message.ProtocolAH {
				t.Fatalf("%+v", ps)
			}
			for _, tr := range ps[0].Transforms {
				if tr.Type == message.TransformENCR || (tr.Type == message.TransformINTEG && tr.ID != message.IntegHMACSHA256128) {
					t.Fatalf("AH transforms %+v", ps[0].Transforms)
				}
			}
		}},
		{"bundle over ikev2 (issue 13)", func(c *pb.Config) {
			c.IpsecVpn.Ike.Policies[0].Version = 2
			c.IpsecVpn.Ipsec.Proposals[0].Protocol = pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE
		}, "[edit services ipsec-vpn ipsec proposal e1] protocol bundle needs IKE version 1", nil},
		{"gcm with hmac", func(c *pb.Config) { c.IpsecVpn.Ipsec.Proposals[0].AuthenticationAlgorithm = "hmac-sha1-96" },
			"HMAC Authentication is not compatible", nil},
		{"bad local gateway", func(c *pb.Config) { c.ServiceSets[0].IpsecVpnOptions.LocalGateway.Address = "nope" },
			"[edit services service-set ss1 ipsec-vpn-options local-gateway]", nil},
		{"local-gateway interface", func(c *pb.Config) {
			c.ServiceSets[0].IpsecVpnOptions.LocalGateway = &pb.LocalGateway{Interface: "ge-0/0/0.0"}
			c.Interfaces = []*pb.Interface{{Name: "ge-0/0/0", Units: []*pb.Unit{{Number: 0, InetAddresses: []string{"192.0.2.7/24"}}}}}
		}, "", func(t *testing.T, p []*Peer) {
			if p[0].Local.String() != "192.0.2.7" {
				t.Fatalf("local gateway %v, want the interface's address 192.0.2.7", p[0].Local)
			}
		}},
		{"local-gateway interface without address", func(c *pb.Config) {
			c.ServiceSets[0].IpsecVpnOptions.LocalGateway = &pb.LocalGateway{Interface: "ge-0/0/9.0"}
		}, "interface ge-0/0/9.0 has no address", nil},
		{"term overrides", func(c *pb.Config) {
			th := c.IpsecVpn.Rules[0].Terms[0].Then
			th.NoAntiReplay = true
			th.TunnelMtu = proto.Uint32(1400)
			th.InitiateDeadPeerDetection = true
			th.DeadPeerDetection = &pb.DeadPeerDetection{Interval: proto.Uint32(20)}
			c.IpsecVpn.DisableNatt = true
		}, "", func(t *testing.T, p []*Peer) {
			if p[0].IKE.DPDInterval != 20*time.Second || p[0].IKE.DPDThreshold != 3 || p[0].IKE.NATTraversal {
				t.Fatalf("%+v", p[0])
			}
		}},
		{"remote gateway 0.0.0.0 is a responder", func(c *pb.Config) { c.IpsecVpn.Rules[0].Terms[0].Then.RemoteGateway = "0.0.0.0" }, "", func(t *testing.T, p []*Peer) {
			if !p[0].Dynamic || p[0].Establish != ResponderOnly {
				t.Fatal("not dynamic")
			}
		}},
		{"dynamic endpoints", func(c *pb.Config) {
			c.ServiceSets[0].IpsecVpnRules = nil
			c.ServiceSets[0].IpsecVpnOptions.IkeAccessProfile = "dep"
			c.AccessProfiles = []*pb.AccessProfile{{Name: "dep", ClientIke: &pb.AccessClientIKE{
				PreSharedKey:      &pb.Key{Value: []byte("k")},
				AllowedProxyPairs: []*pb.ProxyPair{{Local: "10.0.1.0/24", Remote: "10.0.0.0/24"}},
			}}}
		}, "", func(t *testing.T, p []*Peer) {
			c := p[0].IKE
			if !p[0].Dynamic || p[0].Key != "ss1/dep" || len(c.IKEProposals) != 2 || c.LocalTS[0].Start.String() != "10.0.1.0" {
				t.Fatalf("%+v", p[0])
			}
			// Every ESP transform is accepted, with or without PFS.
			if len(c.ESPProposals) != 4 || c.ESPProposals[3].Number != 4 {
				t.Fatalf("%d ESP proposals", len(c.ESPProposals))
			}
		}},
		{"proposal-set", func(c *pb.Config) {
			c.IpsecVpn.Ipsec.Policies[0].Proposals = nil
			c.IpsecVpn.Ipsec.Policies[0].ProposalSet = "standard"
		}, "", func(t *testing.T, p []*Peer) {
			if len(p[0].IKE.ESPProposals) != 2 || p[0].IKE.PFSGroup != 14 {
				t.Fatalf("%d ESP proposals", len(p[0].IKE.ESPProposals))
			}
		}},
		{"certificates with a DN identity", func(c *pb.Config) {
			c.IpsecVpn.Ike.Proposals[0].AuthenticationMethod = "rsa-signatures"
			pol := c.IpsecVpn.Ike.Policies[0]
			pol.PreSharedKey, pol.LocalCertificate = nil, "gw"
			pol.LocalId = &pb.IKEIdentity{Kind: &pb.IKEIdentity_DistinguishedName{DistinguishedName: &pb.DistinguishedName{}}}
			pol.RemoteId = &pb.RemoteIdentity{DistinguishedName: &pb.DistinguishedName{Container: "O=Example"}}
			c.ServiceSets[0].IpsecVpnOptions.TrustedCa = []string{"ca1"}
		}, "", func(t *testing.T, p []*Peer) {
			if p[0].cert == nil || !p[0].cert.subjectID || p[0].IKE.LocalID != nil || p[0].cert.trustedCA[0] != "ca1" || p[0].cert.certificateID != "gw" {
				t.Fatalf("%+v", p[0].cert)
			}
			dn := func(s string) *message.ID {
				n := pkix.Name{CommonName: "gw1", Organization: []string{s}}
				der, _ := asn1.Marshal(n.ToRDNSequence())
				return &message.ID{IDType: message.IDDERASN1DN, Data: der}
			}
			if !p[0].IKE.RemoteID(dn("Example")) || p[0].IKE.RemoteID(dn("Other")) {
				t.Fatal("container match")
			}
		}},
		{"signatures without a certificate", func(c *pb.Config) {
			c.IpsecVpn.Ike.Proposals[0].AuthenticationMethod = "rsa-signatures"
		}, "local-certificate must be configured", nil},
		{"missing access profile", func(c *pb.Config) {
			c.ServiceSets[0].IpsecVpnOptions.IkeAccessProfile = "nope"
		}, "referenced ike access profile must be defined", nil},
		{"fqdn identities", func(c *pb.Config) {
			c.IpsecVpn.Ike.Policies[0].LocalId = &pb.IKEIdentity{Kind: &pb.IKEIdentity_Fqdn{Fqdn: "a.example"}}
			c.IpsecVpn.Ike.Policies[0].RemoteId = &pb.RemoteIdentity{Fqdn: []string{"b.example"}}
		}, "", func(t *testing.T, p []*Peer) {
			c := p[0].IKE
			if c.LocalID.IDType != message.IDFQDN || !c.RemoteID(&message.ID{IDType: message.IDFQDN, Data: []byte("b.example")}) ||
				c.RemoteID(&message.ID{IDType: message.IDFQDN, Data: []byte("c.example")}) {
				t.Fatal("identities")
			}
		}},
	}
	ref, _ := Peers(base())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			p, err := Peers(c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed := p[0].Fingerprint != ref[0].Fingerprint; changed != (tc.name != "ok") {
				t.Fatalf("fingerprint changed: %v", changed)
			}
			tc.check(t, p)
		})
	}
}
