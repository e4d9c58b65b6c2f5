package redact

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

func TestCloneRemovesSecretsAtAnyDepth(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	in := &pb.SAInstall{Sas: []*pb.SA{{
		Spi: 0x1234, EncryptionKey: key, AuthenticationKey: []byte("authkey"),
		EncryptionAlgorithm: "aes-128-gcm",
	}}}
	cfg := &pb.ConfigSnapshot{Revision: 3, Config: &pb.Config{
		IpsecVpn: &pb.IPsecVPN{Ike: &pb.IKE{Policies: []*pb.IKEPolicy{{
			Name: "p1", PreSharedKey: &pb.Key{Value: []byte("TEST")},
		}}}},
		Pki: &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca", CrlPassword: "hunter2"}}},
	}}
	op := &pb.OpRequest{Words: []string{"request"}, SecretArgument: "challenge"}

	out := Clone(in).(*pb.SAInstall)
	if len(out.Sas[0].EncryptionKey) != 0 || len(out.Sas[0].AuthenticationKey) != 0 {
		t.Fatalf("keys survived: %v", out)
	}
	if out.Sas[0].Spi != 0x1234 || out.Sas[0].EncryptionAlgorithm != "aes-128-gcm" {
		t.Fatalf("non-secret fields lost: %v", out)
	}
	if !bytes.Equal(in.Sas[0].EncryptionKey, key) {
		t.Fatal("Clone modified its input")
	}
	c := Clone(cfg).(*pb.ConfigSnapshot)
	if v := c.Config.IpsecVpn.Ike.Policies[0].PreSharedKey.Value; len(v) != 0 {
		t.Fatalf("psk survived: %q", v)
	}
	if c.Config.Pki.CaProfiles[0].CrlPassword != Mark {
		t.Fatalf("crl password = %q", c.Config.Pki.CaProfiles[0].CrlPassword)
	}
	o := Clone(op).(*pb.OpRequest)
	if o.SecretArgument != Mark || o.Words[0] != "request" {
		t.Fatalf("op = %v", o)
	}
}

func TestJSONHasNoSecret(t *testing.T) {
	m := &pb.SAInstall{Sas: []*pb.SA{{Spi: 7, EncryptionKey: []byte("supersecretkeymaterial")}}}
	j := JSON(m)
	if strings.Contains(j, "c3VwZXJzZWNyZXRrZXltYXRlcmlhbA") || strings.Contains(j, "supersecret") {
		t.Fatalf("secret in JSON: %s", j)
	}
	if !strings.Contains(j, `"spi":7`) && !strings.Contains(j, `"spi": 7`) {
		t.Fatalf("spi missing: %s", j)
	}
	if JSON(nil) != "null" || Clone(nil) != nil {
		t.Fatal("nil handling")
	}
}

func TestSecretWords(t *testing.T) {
	in := &pb.ConfigEditRequest{
		Words: []string{"set", "services", "ipsec-vpn", "ike", "policy", "p", "pre-shared-key", "ascii-text", "TEST"},
		Text:  "pre-shared-key ascii-text TEST;",
	}
	out := Clone(in).(*pb.ConfigEditRequest)
	if out.Words[8] != Mark || out.Words[7] != "ascii-text" || out.Words[5] != "p" {
		t.Fatalf("words = %v", out.Words)
	}
	if out.Text != Mark || in.Words[8] != "TEST" {
		t.Fatalf("text %q, input words %v", out.Text, in.Words)
	}
	op := Clone(&pb.OpRequest{Words: []string{"request", "x", "challenge-password", "pw", "subject", "CN=a"}}).(*pb.OpRequest)
	if strings.Join(op.Words, " ") != "request x challenge-password (redacted) subject CN=a" {
		t.Fatalf("op words = %v", op.Words)
	}
	if got := Words([]string{"hexadecimal"}); got[0] != "hexadecimal" {
		t.Fatalf("trailing keyword: %v", got)
	}
}
