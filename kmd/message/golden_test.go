package message

import (
	"bytes"
	"os"
	"testing"
)

// TestStrongSwanIKESAInit parses an IKE_SA_INIT response captured from
// strongSwan 5.9.8 (ikesa/testdata/strongswan/run.sh, SITESEC_CAPTURE) and
// re-encodes it byte for byte.
func TestStrongSwanIKESAInit(t *testing.T) {
	raw, err := os.ReadFile("testdata/strongswan-5.9.8-ike-sa-init-response.bin")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exchange != IKESAInit || !p.IsResponse() || p.IsInitiator() || p.SPIr == 0 || p.MessageID != 0 {
		t.Fatalf("header %+v", p.Header)
	}
	var kinds []PayloadType
	for _, pl := range p.Payloads {
		kinds = append(kinds, pl.Type())
	}
	want := []PayloadType{PayloadSA, PayloadKE, PayloadNonce, PayloadNotify, PayloadNotify, PayloadNotify}
	if len(kinds) < len(want) {
		t.Fatalf("payloads %v", kinds)
	}
	for i, k := range want {
		if kinds[i] != k {
			t.Fatalf("payloads %v", kinds)
		}
	}
	m := &Message{Header: p.Header, Payloads: p.Payloads}
	if err := Check(m); err != nil {
		t.Fatal(err)
	}
	sa := p.Payloads[0].(*SA)
	if len(sa.Proposals) != 1 || sa.Proposals[0].Number != 1 {
		t.Fatalf("proposals %+v", sa.Proposals)
	}
	if m.Notify(NotifyNATDetectionSourceIP) == nil || m.Notify(NotifyFragmentationSupported) == nil {
		t.Fatal("notifications missing")
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, raw) {
		t.Fatalf("re-encoded differs:\n%x\n%x", out, raw)
	}
}
