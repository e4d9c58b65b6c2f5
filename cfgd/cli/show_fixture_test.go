package cli

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/proto/pb"
)

// showNow is the clock of every golden file.
var showNow = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

func ikeSAsFixture(detail bool) *pb.IKESecurityAssociations {
	return &pb.IKESecurityAssociations{Detail: detail, Sas: []*pb.IKESecurityAssociation{
		{
			Index: 1, RemoteAddress: "192.0.2.2", State: "matured",
			InitiatorCookie: "8a6d0c6b1e2f3a41", ResponderCookie: "0f3e2d1c4b5a6978", ExchangeType: "IKEv2",
			Role: "Initiator", AuthenticationMethod: "Pre-shared-keys", GatewayInterface: "ms-1/2/0.2",
			RoutingInstance: "default", ServiceSet: "ss1",
			LocalAddress: "192.0.2.1", LocalPort: 500, RemotePort: 500, ExpiresInSeconds: 2214,
			AuthenticationAlgorithm: "hmac-sha1-96", EncryptionAlgorithm: "aes-256-cbc", PrfAlgorithm: "hmac-sha1", DhGroup: "14",
			BytesIn: 1380, BytesOut: 1532, PacketsIn: 7, PacketsOut: 8, InvalidSpis: 1,
			Flags: []string{"IKE SA created"}, IpsecSasCreated: 2, IpsecSasDeleted: 0, Rekeys: 1,
			LocalIdentity: "ipv4(192.0.2.1)", RemoteIdentity: "ipv4(192.0.2.2)",
			Phase2: []*pb.Phase2Negotiation{{
				Type: "CREATE_CHILD_SA", Role: "Initiator", MessageId: 4,
				Local: "192.0.2.1:500", Remote: "192.0.2.2:500",
				LocalIdentity:  "ipv4_subnet(any:0,[0..7]=10.1.12.0/24)",
				RemoteIdentity: "ipv4_subnet(any:0,[0..7]=10.1.15.0/24)",
			}},
		},
		{
			Index: 2, RemoteAddress: "2001:db8:feed::2", State: "not matured",
			InitiatorCookie: "1122334455667788", ResponderCookie: "0000000000000000", ExchangeType: "Main",
			Role: "Responder", AuthenticationMethod: "RSA-signatures",
			LocalAddress: "2001:db8:feed::1", LocalPort: 500, RemotePort: 4500, NatDetected: true,
		},
	}}
}

func ikeStatisticsFixture() *pb.IKEStatistics {
	return &pb.IKEStatistics{Peers: []*pb.IKEStatistics_Peer{
		{RemoteAddress: "192.0.2.2", LocalAddress: "192.0.2.1", Counters: map[string]uint64{
			"delete-payloads-received": 1, "delete-payloads-sent": 2,
			"dpd-requests-sent": 30, "dpd-responses-received": 29, "dpd-requests-received": 1,
			"invalid-spi": 3, "ikev2-rekeys": 4, "ipsec-sas-created": 5, "ipsec-sas-deleted": 4,
			"requests-sent": 40, "responses-sent": 38, "retransmits": 5, "retransmits-answered": 1,
			// Not in the table: shown after it, not hidden.
			"zz-new-counter": 9, "cookie-challenges-sent": 6,
		}},
		{RemoteAddress: "198.51.100.7"},
	}}
}

func ipsecSAsFixture(level string, hex bool) *pb.IPsecSecurityAssociations {
	return &pb.IPsecSecurityAssociations{Level: level, Hex: hex, ServiceSets: []*pb.ServiceSetSAs{
		{ServiceSet: "ss1", RoutingInstance: "default", Tunnels: []*pb.IPsecTunnel{
			{
				Rule: "vpn-rule", Term: "t1", TunnelIndex: 1, LocalGateway: "192.0.2.1", RemoteGateway: "192.0.2.2",
				LocalIdentity:   "ipv4_subnet(any:0,[0..7]=10.1.12.0/24)",
				RemoteIdentity:  "ipv4_subnet(any:0,[0..7]=10.1.15.0/24)",
				InsideInterface: "ms-1/2/0.1", TunnelMtu: 1500, NattKeepalive: 0,
				PrimaryGateway: "192.0.2.2", PrimaryState: "Up", BackupGateway: "192.0.2.3", BackupState: "Standby", Failovers: 1,
				Sas: []*pb.IPsecSAInfo{
					{Direction: "inbound", Spi: 2128590715, Mode: "tunnel", Type: "dynamic", State: "installed", Protocol: "ESP",
						Authentication: "hmac-sha1-96", Encryption: "aes-256-cbc", SoftLifetimeSeconds: 26485, HardLifetimeSeconds: 26578,
						AntiReplay: true, ReplayWindow: 128, Sequence: 4096},
					{Direction: "outbound", Spi: 2473183451, Mode: "tunnel", Type: "dynamic", State: "installed", Protocol: "ESP",
						Authentication: "hmac-sha1-96", Encryption: "aes-256-cbc", SoftLifetimeSeconds: 26485, HardLifetimeSeconds: 26578,
						Ttl: 64, Sequence: 4101},
				},
			},
			{
				Rule: "vpn-rule", Term: "t2", TunnelIndex: 2, LocalGateway: "192.0.2.1", RemoteGateway: "203.0.113.9",
				InsideInterface: "ms-1/2/0.1", TunnelMtu: 1500, NattDetected: true, UdpDestPort: 4500, NattKeepalive: 5,
				Sas: []*pb.IPsecSAInfo{
					{Direction: "inbound", Spi: 16000, Mode: "tunnel", Type: "manual", State: "installed", Protocol: "ESP",
						Authentication: "none", Encryption: "aes-128-gcm", AntiReplay: false},
					{Direction: "outbound", Spi: 16001, Mode: "tunnel", Type: "manual", State: "Not Installed", Protocol: "ESP",
						Authentication: "none", Encryption: "aes-128-gcm", CopyTos: true, CopyTtl: true},
				},
			},
		}},
		{ServiceSet: "ss-vrf", RoutingInstance: "vpn-a", Tunnels: []*pb.IPsecTunnel{
			{
				Rule: "dep", Term: "any", TunnelIndex: 7, LocalGateway: "2001:db8:feed::1", RemoteGateway: "2001:db8:feed::2",
				InsideInterface: "ms-1/2/0.10", UdpEncapsulate: true, UdpDestPort: 4565,
				Sas: []*pb.IPsecSAInfo{
					{Direction: "inbound", Spi: 0xdeadbeef, AuxSpi: 300, Mode: "tunnel", Type: "dynamic", State: "installed", Protocol: "ESP",
						Authentication: "hmac-sha2-256", Encryption: "aes-128-cbc", SoftLifetimeSeconds: -3, HardLifetimeSeconds: 40,
						AntiReplay: true, ReplayWindow: 4096},
				},
			},
		}},
	}}
}

func ipsecCounters(seed uint64) *pb.IPsecCounters {
	return &pb.IPsecCounters{
		EspEncryptedBytes: 1048576 * seed, EspDecryptedBytes: 998877 * seed, EspEncryptedPackets: 1024 * seed, EspDecryptedPackets: 1000 * seed,
		AhAuthenticationFailures: 0, ReplayErrors: 2 * seed, EspAuthenticationFailures: 3 * seed, EspDecryptionFailures: 0,
		BadHeaders: 1, BadTrailers: 0, ReplayBeforeWindowDrops: 4, ReplayedPackets: 5, RuleLookupFailures: 6, NoSa: 7,
		IpIntegrityFailures: 8, ExceedsTunnelMtu: 9, FlowErrors: 10, MiscErrors: 11, InvalidSpi: 12, TsCheckFailures: 13, Discards: 14,
	}
}

func ipsecStatisticsFixture(detail bool) *pb.IPsecStatistics {
	if !detail {
		return &pb.IPsecStatistics{Blocks: []*pb.IPsecStatistics_Block{
			{Pic: "ms-1/2/0", ServiceSet: "ss1", Counters: ipsecCounters(3)},
			{Pic: "ms-1/2/0", ServiceSet: "ss-vrf"},
		}}
	}
	return &pb.IPsecStatistics{Detail: true, Blocks: []*pb.IPsecStatistics_Block{
		{Pic: "ms-1/2/0", ServiceSet: "ss1", LocalGateway: "192.0.2.1", RemoteGateway: "192.0.2.2", TunnelIndex: 1, Counters: ipsecCounters(1)},
		{Pic: "ms-1/2/0", ServiceSet: "ss1", LocalGateway: "192.0.2.1", RemoteGateway: "203.0.113.9", TunnelIndex: 2, Counters: ipsecCounters(2)},
	}}
}

func pkiCertificatesFixture(kind string, detail bool) *pb.PKICertificates {
	nb := time.Date(2025, 11, 27, 21, 15, 0, 0, time.UTC).Unix()
	na := time.Date(2026, 11, 27, 21, 15, 0, 0, time.UTC).Unix()
	if kind == "ca-certificate" {
		return &pb.PKICertificates{Kind: kind, Detail: detail, Certificates: []*pb.PKICertificate{
			{CertificateId: "ca1", CaProfile: "ca1", Version: 3, Serial: "5f1e2d3c4b5a6978",
				Issuer: "C=US, O=Example, CN=Example Root CA", Subject: "C=US, O=Example, CN=Example Root CA",
				NotBeforeUnix: nb, NotAfterUnix: time.Date(2035, 11, 27, 21, 15, 0, 0, time.UTC).Unix(),
				PublicKeyAlgorithm: "rsaEncryption(4096 bits)", SignatureAlgorithm: "SHA256-RSA",
				FingerprintSha1:   "00:8e:6f:58:dd:68:bf:25:0a:e3:f9:17:70:d6:61:f3:53:a7:79:10",
				FingerprintSha256: "3a:7b:1c:9d:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:01:23:45:67:89:ab:cd:ef:fe:dc:ba:98",
				FingerprintMd5:    "d4:1d:8c:d9:8f:00:b2:04:e9:80:09:98:ec:f8:42:7e",
				KeyUsage:          []string{"Certificate signing", "CRL signing"}, Status: "valid",
				Der: []byte{0x30, 0x82}},
			// An old CA pkid did not label: now decides it has expired.
			{CertificateId: "ca-old", CaProfile: "ca-old", Version: 3, Serial: "01",
				Issuer: "O=Old, Inc., C=DE", Subject: "CN=Old CA, O=Old, Inc., C=DE, DC=example, emailAddress=pki@old.example",
				NotBeforeUnix: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), NotAfterUnix: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
				PublicKeyAlgorithm: "ecdsaEncryption(P-256)", SignatureAlgorithm: "ECDSA-SHA256",
				DistributionCrl: []string{"http://crl.old.example/old.crl"}},
		}}
	}
	return &pb.PKICertificates{Kind: kind, Detail: detail, Certificates: []*pb.PKICertificate{
		{CertificateId: "vpn1", CaProfile: "ca1", Version: 3, Serial: "1a2b3c",
			Issuer: "C=US, O=Example, CN=Example Root CA", Subject: "C=US, ST=CA, L=Sunnyvale, O=Example, OU=net, CN=vpn1.example.net",
			AlternateSubject: []string{"fqdn:vpn1.example.net", "ipv4:192.0.2.1", "ipv6:2001:db8:feed::1", "email:vpn@example.net"},
			NotBeforeUnix:    nb, NotAfterUnix: na,
			PublicKeyAlgorithm: "rsaEncryption(2048 bits)", SignatureAlgorithm: "SHA256-RSA",
			FingerprintSha1:   "46:71:15:34:ab:cd:ef:01:23:45:67:89:aa:bb:cc:dd:ee:ff:00:11",
			FingerprintSha256: "9f:86:d0:81:88:4c:7d:65:9a:2f:ea:a0:c5:5a:d0:15:a3:bf:4f:1b:2b:0b:82:2c:d1:5d:6c:15:b0:f0:0a:08",
			FingerprintMd5:    "0c:c1:75:b9:c0:f1:b6:a8:31:c3:99:e2:69:77:26:61",
			DistributionCrl:   []string{"http://ca.example.net/crl/root.crl"},
			KeyUsage:          []string{"Digital signature", "Key encipherment"},
			AutoReEnrollment:  "Enabled (scep, ca-profile ca1, at 80% of validity: 2026-09-14T21:15:00Z)", Status: "valid"},
		{CertificateId: "vpn2", Issuer: "C=US, O=Example, CN=Example Root CA", Subject: "O=Example",
			NotBeforeUnix: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Unix(), NotAfterUnix: na,
			PublicKeyAlgorithm: "ecdsaEncryption(P-384)", Status: "not yet valid"},
	}}
}

func pkiRequestsFixture() *pb.PKICertificateRequests {
	return &pb.PKICertificateRequests{Requests: []*pb.PKICertificateRequests_Request{
		{CertificateId: "vpn1", Subject: "CN=vpn1.example.net, O=Example", AlternateSubject: []string{"fqdn:vpn1.example.net", "ipv4:192.0.2.1"},
			PublicKeyAlgorithm: "rsaEncryption(2048 bits)", FingerprintSha1: "3c:1d:2e:3f:40:51:62:73:84:95:a6:b7:c8:d9:ea:fb:0c:1d:2e:9a",
			Pem: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"},
		{CertificateId: "bare"},
	}}
}

func pkiCRLsFixture() *pb.PKICRLs {
	return &pb.PKICRLs{Crls: []*pb.PKICRLs_CRL{
		{CaProfile: "ca1", Issuer: "C=US, O=Example, CN=Example Root CA",
			ThisUpdateUnix: time.Date(2026, 1, 14, 21, 15, 0, 0, time.UTC).Unix(), NextUpdateUnix: time.Date(2026, 1, 21, 21, 15, 0, 0, time.UTC).Unix(),
			RevokedSerials: []string{"1a2b", "3c4d5e"}, Url: "http://ca.example.net/crl/root.crl",
			FetchedUnix: time.Date(2026, 1, 15, 11, 0, 0, 0, time.UTC).Unix(), Status: "valid"},
		// pkid did not label this one: now shows it is past its next update.
		{CaProfile: "ca-old", Issuer: "O=Old, Inc., C=DE",
			ThisUpdateUnix: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).Unix(), NextUpdateUnix: time.Date(2025, 12, 8, 0, 0, 0, 0, time.UTC).Unix()},
		{CaProfile: "ca2", Url: "ldap://ldap.example.net/cn=ca2", Status: "download failed: connection refused"},
	}}
}

func interfaceMapFixture() *pb.InterfaceMap {
	return &pb.InterfaceMap{Entries: []*pb.InterfaceMap_Entry{
		{JunosName: "ms-1/2/0.1", LinuxName: "ms-1-2-0u1", Addresses: []string{"10.0.1.1/24", "2001:db8:1::1/64"}, Mtu: 1500, Up: true, ServiceSet: "ss1"},
		{JunosName: "ms-1/2/0.10", LinuxName: "ms-1-2-0u10", Mtu: 9000, ServiceSet: "ss-vrf"},
		{JunosName: "ms-1/2/0.200", LinuxName: "ms-1-2-0u200"},
	}}
}

// bodyFixtures holds a realistic message for every member of OpReply.body,
// keyed by the field name.
var bodyFixtures = map[string]func() proto.Message{
	"processes": func() proto.Message {
		return &pb.ProcessList{Router: "r0", Bus: "nats://127.0.0.1:4222", BusServerVersion: "2.15.2", Processes: []*pb.ProcessStatus{
			{Name: "kmd", Pid: 4242, State: pb.DaemonState_DAEMON_STATE_RUNNING, UptimeSeconds: 93784, ConfigRevision: 7, BusStatus: "connected"},
			{Name: "fwdd", State: pb.DaemonState_DAEMON_STATE_STOPPED, Restarts: 3, LastExitReason: "exit status 1",
				LastExitAt: timestamppb.New(showNow.Add(-90 * time.Second))},
		}}
	},
	"ike_security_associations":   func() proto.Message { return ikeSAsFixture(true) },
	"ike_statistics":              func() proto.Message { return ikeStatisticsFixture() },
	"ipsec_security_associations": func() proto.Message { return ipsecSAsFixture("detail", false) },
	"ipsec_statistics":            func() proto.Message { return ipsecStatisticsFixture(false) },
	"pki_certificates":            func() proto.Message { return pkiCertificatesFixture("local-certificate", true) },
	"pki_certificate_requests":    func() proto.Message { return pkiRequestsFixture() },
	"pki_crls":                    func() proto.Message { return pkiCRLsFixture() },
	"commit_history": func() proto.Message {
		return &pb.CommitHistory{Entries: []*pb.CommitHistory_Entry{{Index: 0, UnixTime: showNow.Unix(), User: "root", Client: "cli", Comment: "tunnels", Revision: 3}}}
	},
	"interface_map":       func() proto.Message { return interfaceMapFixture() },
	"service_set_summary": func() proto.Message { return serviceSetSummaryFixture() },
	"config_text":         func() proto.Message { return &pb.ConfigText{Text: "services {\n    ipsec-vpn;\n}\n"} },
}

func servicesCertificatesFixture() *pb.PKICertificates {
	c := pkiCertificatesFixture("local-certificate", true).Certificates[0]
	a := proto.Clone(c).(*pb.PKICertificate)
	a.CertificateId, a.ServiceSet, a.Status = "1", "ss1", "valid"
	b := proto.Clone(c).(*pb.PKICertificate)
	b.CertificateId, b.ServiceSet, b.Status, b.Subject, b.AlternateSubject = "2", "ss1", "root valid", b.Issuer, nil
	d := proto.Clone(c).(*pb.PKICertificate)
	d.CertificateId, d.ServiceSet = "1", "ss-vrf"
	return &pb.PKICertificates{Kind: "services-certificates", Certificates: []*pb.PKICertificate{a, b, d}}
}

// serviceSetSummaryFixture has the values of Juniper's published XML of
// show services service-sets summary (ms-4/2/0, 15.1) and a second PIC.
func serviceSetSummaryFixture() *pb.ServiceSetSummary {
	return &pb.ServiceSetSummary{Entries: []*pb.ServiceSetSummary_Entry{
		{InterfaceName: "ms-4/2/0", ServiceSetsConfigured: 2, BytesUsed: 2038579398, PercentBytesUsed: 7.09,
			PolicyBytesUsed: 3142872, PercentPolicyBytesUsed: 0.29, CpuUtilization: 1.96, ServiceSets: []string{"ss1", "ss2"}},
		{InterfaceName: "ms-5/0/0", ServiceSetsConfigured: 1, BytesUsed: 2038579398, PercentBytesUsed: 7.09,
			PolicyBytesUsed: 1024, PercentPolicyBytesUsed: 0, CpuUtilization: 1.96, ServiceSets: []string{"ss-vrf"}},
	}}
}
