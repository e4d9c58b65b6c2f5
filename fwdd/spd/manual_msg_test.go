package spd

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

// TestManualAHMessage: a manual AH or bundle SA with udp-encapsulate is
// refused with an operator message, without internal references (issue
// 12 item 6).
func TestManualAHMessage(t *testing.T) {
	for _, p := range []pb.IPsecProtocol{pb.IPsecProtocol_IPSEC_PROTOCOL_AH, pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE} {
		_, err := manualSA(&Set{UDPEncapPort: 4565}, &Term{}, &pb.ManualSADirection{Protocol: p})
		if err == nil || !strings.HasPrefix(err.Error(), "protocol ah cannot be used with udp-encapsulate") && !strings.HasPrefix(err.Error(), "protocol bundle cannot be used with udp-encapsulate") {
			t.Fatalf("%v", err)
		}
		for _, w := range []string{"SPEC", "IPSEC_PROTOCOL"} {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%q in %q", w, err)
			}
		}
	}
}

// TestManualAHBundle: manual AH SAs carry the protocol and no encryption;
// a bundle's ESP SPI is the auxiliary-spi (Junos: spi and authentication
// are AH's, auxiliary-spi and encryption ESP's).
func TestManualAHBundle(t *testing.T) {
	set := &Set{Name: "s", LocalGateway: netip.MustParseAddr("192.0.2.1")}
	term := &Term{Rule: "r", Name: "t", RemoteGateway: netip.MustParseAddr("192.0.2.2")}
	sas, err := manualSA(set, term, &pb.ManualSADirection{Direction: pb.ManualDirection_MANUAL_DIRECTION_BIDIRECTIONAL,
		Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_AH, Spi: 300, AuthenticationAlgorithm: "hmac-sha1-96",
		AuthenticationKey:   &pb.Key{Value: []byte("01234567890123456789")},
		EncryptionAlgorithm: "3des-cbc", EncryptionKey: &pb.Key{Value: []byte("ignored")}})
	if err != nil || len(sas) != 2 {
		t.Fatal(err, len(sas))
	}
	for _, sa := range sas {
		if sa.GetProtocol() != pb.IPsecProtocol_IPSEC_PROTOCOL_AH || sa.GetEncryptionAlgorithm() != "" || sa.GetEncryptionKey() != nil || sa.GetSpi() != 300 || sa.GetEncapsulation() != pb.Encapsulation_ENCAPSULATION_ESP {
			t.Fatalf("%v", sa)
		}
	}
	sas, err = manualSA(set, term, &pb.ManualSADirection{Direction: pb.ManualDirection_MANUAL_DIRECTION_INBOUND,
		Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE, Spi: 300, AuxiliarySpi: u32p(301), AuthenticationAlgorithm: "hmac-sha1-96",
		EncryptionAlgorithm: "3des-cbc"})
	if err != nil || len(sas) != 1 || sas[0].GetAuxiliarySpi() != 301 || sas[0].GetProtocol() != pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE || sas[0].GetEncryptionAlgorithm() != "3des-cbc" {
		t.Fatal(err, sas)
	}
}

func u32p(v uint32) *uint32 { return &v }
