package transform

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/kmd/message"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC7634AppendixB seals the INFORMATIONAL message of RFC 7634
// appendix B with ChaCha20-Poly1305 and checks every byte.
func TestRFC7634AppendixB(t *testing.T) {
	key := unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3")
	iv := unhex(t, "1011121314151617")
	s := Suite{Protocol: message.ProtocolIKE, Encr: message.EncrChaCha20Poly1305, EncrKeyBits: 256, PRF: message.PRFHMACSHA2256, DH: 31}
	c, err := s.NewCipher(key, nil, bytes.NewReader(iv))
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{
		Header:   message.Header{SPIi: 0xc0c1c2c3c4c5c6c7, SPIr: 0xd0d1d2d3d4d5d6d7, Exchange: message.Informational, MessageID: 9},
		Payloads: []message.Payload{&message.Notify{NotifyType: message.NotifySetWindowSize, Data: []byte{0, 0, 0, 10}}},
	}
	got, err := m.Seal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e202500000000090000004529000029
		1011121314151617 610394701f8d017f7c12924889 6b71bfe25236efd7cdc67066906315b2`)
	if !bytes.Equal(got, want) {
		t.Fatalf("sealed\n%x\nwant\n%x", got, want)
	}
	p, err := message.Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	back, err := p.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if n := back.Notify(message.NotifySetWindowSize); n == nil || !bytes.Equal(n.Data, []byte{0, 0, 0, 10}) {
		t.Fatalf("opened %#v", back.Payloads)
	}
}

// TestRFC5903Group19 is the 256-bit random ECP group vector of RFC 5903
// section 8.1.
func TestRFC5903Group19(t *testing.T) {
	i, err := NewDHFromPrivate(19, unhex(t, "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewDHFromPrivate(19, unhex(t, "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53"))
	if err != nil {
		t.Fatal(err)
	}
	gi := unhex(t, "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180 5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3")
	gr := unhex(t, "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63 56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB")
	if !bytes.Equal(i.Public(), gi) || !bytes.Equal(r.Public(), gr) {
		t.Fatal("public values differ from RFC 5903")
	}
	want := unhex(t, "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE")
	for _, d := range []struct {
		dh   DH
		peer []byte
	}{{i, gr}, {r, gi}} {
		s, err := d.dh.Shared(d.peer)
		if err != nil || !bytes.Equal(s, want) {
			t.Fatalf("g^ir = %x, %v", s, err)
		}
	}
	// A point off the curve is refused.
	bad := bytes.Clone(gr)
	bad[63] ^= 1
	if _, err := i.Shared(bad); err == nil {
		t.Fatal("off-curve point accepted")
	}
}

// TestCurve25519 is the RFC 7748 section 5.2 vector through group 31.
func TestCurve25519(t *testing.T) {
	d, err := NewDHFromPrivate(31, unhex(t, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Shared(unhex(t, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
	if err != nil || !bytes.Equal(s, unhex(t, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")) {
		t.Fatalf("X25519 = %x, %v", s, err)
	}
	if _, err := d.Shared(make([]byte, 32)); err == nil {
		t.Fatal("all-zero output accepted (RFC 8031 section 2.2)")
	}
}

func TestMODP(t *testing.T) {
	for _, g := range []uint16{14, 15, 16} {
		m := modpGroup(g)
		// RFC 3526: p is a safe prime whose top and bottom 64 bits are set.
		if m.p.BitLen() != len(m.pBytes)*8 || !m.p.ProbablyPrime(4) {
			t.Fatalf("group %d: bad prime", g)
		}
		q := new(big.Int).Rsh(m.p, 1)
		if !q.ProbablyPrime(2) {
			t.Fatalf("group %d: not a safe prime", g)
		}
		// Exponent 1 makes the public value 2 and the shared secret the
		// peer's value: leading zeros must stay (RFC 7296 section 2.14).
		one, err := NewDHFromPrivate(g, []byte{1})
		if err != nil {
			t.Fatal(err)
		}
		pub := one.Public()
		if len(pub) != len(m.pBytes) || pub[len(pub)-1] != 2 || pub[0] != 0 {
			t.Fatalf("group %d: public %x...", g, pub[:4])
		}
		peer := make([]byte, len(m.pBytes))
		peer[len(peer)-1] = 7
		s, err := one.Shared(peer)
		if err != nil || !bytes.Equal(s, peer) {
			t.Fatalf("group %d: shared lost its length: %v", g, err)
		}
		pm1 := new(big.Int).Sub(m.p, big.NewInt(1)).FillBytes(make([]byte, len(m.pBytes)))
		for name, bad := range map[string][]byte{
			"zero": make([]byte, len(m.pBytes)), "one": append(make([]byte, len(m.pBytes)-1), 1),
			"p-1": pm1, "p": m.pBytes, "short": peer[1:],
		} {
			if _, err := one.Shared(bad); err == nil {
				t.Errorf("group %d: %s accepted", g, name)
			}
		}
	}
	// Two random key pairs agree.
	a, _ := NewDH(14, rand.Reader)
	b, _ := NewDH(14, rand.Reader)
	s1, err1 := a.Shared(b.Public())
	s2, err2 := b.Shared(a.Public())
	if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) || len(s1) != 256 {
		t.Fatal("group 14 sides disagree")
	}
}

func TestAllGroupsAgree(t *testing.T) {
	for _, g := range Groups {
		a, err := NewDH(g, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewDH(g, rand.Reader)
		s1, err1 := a.Shared(b.Public())
		s2, err2 := b.Shared(a.Public())
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Fatalf("group %d: %v %v", g, err1, err2)
		}
	}
	if _, err := NewDH(3, rand.Reader); err == nil {
		t.Fatal("group 3 (EC2N, never implemented) accepted")
	}
}

// TestRFC4868 checks PRF-HMAC-SHA-256 against RFC 4868 section 2.7.2.1
// test case 1, and the truncated integrity ICV.
func TestRFC4868(t *testing.T) {
	prf, _ := NewPRF(message.PRFHMACSHA2256)
	key := bytes.Repeat([]byte{0x0b}, 32)
	want := unhex(t, "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7")
	if got := prf.Sum(key, []byte("Hi "), []byte("There")); !bytes.Equal(got, want) {
		t.Fatalf("PRF = %x", got)
	}
	// prf+ first block is prf(K, S | 0x01); the second chains T1.
	out, err := prf.Plus(key, []byte("seed"), 40)
	if err != nil {
		t.Fatal(err)
	}
	t1 := prf.Sum(key, []byte("seed"), []byte{1})
	t2 := prf.Sum(key, t1, []byte("seed"), []byte{2})
	if !bytes.Equal(out, append(t1, t2[:8]...)) {
		t.Fatal("prf+ does not follow RFC 7296 section 2.13")
	}
	if _, err := prf.Plus(key, nil, 255*32+1); err == nil {
		t.Fatal("prf+ beyond 255 blocks")
	}
}

func TestKeyDerivation(t *testing.T) {
	s := Suite{Protocol: message.ProtocolIKE, Encr: message.EncrAESCBC, EncrKeyBits: 256, PRF: message.PRFHMACSHA2384, Integ: message.IntegHMACSHA384192, DH: 20}
	prf, _ := NewPRF(s.PRF)
	ni, nr, gir := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 96)
	seed := SKEYSEED(prf, ni, nr, gir)
	if !bytes.Equal(seed, prf.Sum(append(bytes.Clone(ni), nr...), gir)) {
		t.Fatal("SKEYSEED")
	}
	k, err := DeriveIKEKeys(s, seed, ni, nr, 0x1122334455667788, 0x99aabbccddeeff00)
	if err != nil {
		t.Fatal(err)
	}
	km, _ := prf.Plus(seed, unhex(t, strings.Repeat("01", 32)+strings.Repeat("02", 32)+"1122334455667788 99aabbccddeeff00"), 48*3+48*2+32*2)
	var cat []byte
	for _, x := range [][]byte{k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr} {
		cat = append(cat, x...)
	}
	if !bytes.Equal(cat, km) || len(k.D) != 48 || len(k.Ai) != 48 || len(k.Ei) != 32 || len(k.Pr) != 48 {
		t.Fatal("IKE keys do not split KEYMAT in RFC 7296 section 2.14 order")
	}
	child := Suite{Protocol: message.ProtocolESP, Encr: message.EncrAESGCM16, EncrKeyBits: 128}
	ck, err := DeriveChildKeys(prf, child, k.D, nil, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	ckm, _ := prf.Plus(k.D, append(bytes.Clone(ni), nr...), 40)
	if !bytes.Equal(ck.EncrI, ckm[:20]) || !bytes.Equal(ck.EncrR, ckm[20:]) || ck.IntegI != nil {
		t.Fatal("CHILD keys")
	}
	// With PFS g^ir comes first in the seed (RFC 7296 section 2.17).
	ck2, _ := DeriveChildKeys(prf, child, k.D, gir, ni, nr)
	if bytes.Equal(ck2.EncrI, ck.EncrI) {
		t.Fatal("PFS did not change KEYMAT")
	}
	rs := RekeySKEYSEED(prf, k.D, gir, ni, nr)
	if !bytes.Equal(rs, prf.Sum(k.D, gir, ni, nr)) {
		t.Fatal("rekey SKEYSEED")
	}
}

func TestCiphers(t *testing.T) {
	suites := []Suite{
		{Encr: message.EncrAESCBC, EncrKeyBits: 128, Integ: message.IntegHMACSHA196},
		{Encr: message.EncrAESCBC, EncrKeyBits: 256, Integ: message.IntegHMACSHA256128},
		{Encr: message.EncrAESCBC, EncrKeyBits: 192, Integ: message.IntegHMACSHA384192},
		{Encr: message.EncrAESCBC, EncrKeyBits: 256, Integ: message.IntegHMACSHA512256},
		{Encr: message.Encr3DES, Integ: message.IntegHMACSHA196},
		{Encr: message.EncrAESGCM16, EncrKeyBits: 128},
		{Encr: message.EncrAESGCM16, EncrKeyBits: 256},
		{Encr: message.EncrChaCha20Poly1305, EncrKeyBits: 256},
	}
	for _, s := range suites {
		t.Run(s.EncryptionName()+s.IntegrityName(), func(t *testing.T) {
			ek := bytes.Repeat([]byte{7}, s.EncrKeyLen())
			var ik []byte
			if !s.AEAD() {
				ik = bytes.Repeat([]byte{9}, s.IntegKeyLen())
			}
			c, err := s.NewCipher(ek, ik, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 40; n++ {
				pt := bytes.Repeat([]byte{byte(n)}, n)
				aad := []byte("header")
				body, err := c.Seal(aad, pt)
				if err != nil || len(body) != c.BodyLen(n) {
					t.Fatalf("n=%d: len %d want %d, %v", n, len(body), c.BodyLen(n), err)
				}
				got, err := c.Open(aad, body)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("n=%d: open: %v", n, err)
				}
				if _, err := c.Open([]byte("Header"), body); err == nil {
					t.Fatal("changed AAD accepted")
				}
				for cut := range body {
					if _, err := c.Open(aad, body[:cut]); err == nil {
						t.Fatalf("truncated body accepted at %d", cut)
					}
				}
			}
			if _, err := s.NewCipher(ek[1:], ik, rand.Reader); err == nil {
				t.Fatal("short key accepted")
			}
		})
	}
}

func TestSelect(t *testing.T) {
	ike := func(e, b, p, i, g uint16) Suite {
		return Suite{Protocol: message.ProtocolIKE, Encr: e, EncrKeyBits: b, PRF: p, Integ: i, DH: g}
	}
	cbc256 := ike(message.EncrAESCBC, 256, message.PRFHMACSHA2256, message.IntegHMACSHA256128, 14)
	gcm := ike(message.EncrAESGCM16, 256, message.PRFHMACSHA2384, 0, 20)
	chacha := ike(message.EncrChaCha20Poly1305, 256, message.PRFHMACSHA2256, 0, 31)
	esp := Suite{Protocol: message.ProtocolESP, Encr: message.EncrAESCBC, EncrKeyBits: 128, Integ: message.IntegHMACSHA196}
	espPFS := esp
	espPFS.DH = 19
	des3IKE := ike(message.Encr3DES, 0, message.PRFHMACSHA1, message.IntegHMACSHA196, 14)
	des3ESP := Suite{Protocol: message.ProtocolESP, Encr: message.Encr3DES, Integ: message.IntegHMACSHA196}
	tests := []struct {
		name  string
		local []message.Proposal
		peer  []Suite
		want  *Suite
	}{
		{"exact", Proposals([]Suite{cbc256}, nil), []Suite{cbc256}, &cbc256},
		{"peer order wins", AllIKE(), []Suite{gcm, cbc256}, &gcm},
		{"chacha", AllIKE(), []Suite{chacha}, &chacha},
		{"no match", Proposals([]Suite{gcm}, nil), []Suite{cbc256}, nil},
		{"key length matters", Proposals([]Suite{ike(message.EncrAESCBC, 128, message.PRFHMACSHA2256, message.IntegHMACSHA256128, 14)}, nil), []Suite{cbc256}, nil},
		{"esp", AllESP(), []Suite{esp}, &esp},
		{"pfs refused without local pfs", AllESP(), []Suite{espPFS}, nil},
		{"pfs", AllESP(19), []Suite{espPFS}, &espPFS},
		{"pfs required", AllESP(19), []Suite{esp}, nil},
		{"protocol differs", AllIKE(), []Suite{esp}, nil},
		// A peer with Junos's default algorithms (3des-cbc, sha1)
		// reach a responder that accepts every supported transform.
		{"3des ike (Junos's implicit proposal)", AllIKE(), []Suite{des3IKE}, &des3IKE},
		{"3des esp", AllESP(), []Suite{des3ESP}, &des3ESP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s, ok := Select(tc.local, Proposals(tc.peer, []byte{1, 2, 3, 4}))
			if tc.want == nil {
				if ok {
					t.Fatalf("selected %+v", s)
				}
				return
			}
			if !ok || s != *tc.want {
				t.Fatalf("got %+v %v, want %+v", s, ok, *tc.want)
			}
		})
	}
}

func TestJunosNames(t *testing.T) {
	tests := []struct {
		enc, auth, dh string
		want          Suite
		err           bool
	}{
		{"", "", "", Suite{Protocol: message.ProtocolIKE, Encr: message.Encr3DES, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 1}, false},
		{"aes-128-gcm", "sha-384", "group20", Suite{Protocol: message.ProtocolIKE, Encr: message.EncrAESGCM16, EncrKeyBits: 128, PRF: message.PRFHMACSHA2384, DH: 20}, false},
		{"chacha20-poly1305", "sha-512", "group31", Suite{Protocol: message.ProtocolIKE, Encr: message.EncrChaCha20Poly1305, EncrKeyBits: 256, PRF: message.PRFHMACSHA2512, DH: 31}, false},
		{"aes-192-cbc", "sha1", "group15", Suite{Protocol: message.ProtocolIKE, Encr: message.EncrAESCBC, EncrKeyBits: 192, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 15}, false},
		{"3des-cbc", "", "", Suite{Protocol: message.ProtocolIKE, Encr: message.Encr3DES, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 1}, false},
		{"des-cbc", "", "", Suite{}, true},
		{"", "md5", "", Suite{}, true},
		{"", "", "group2", Suite{Protocol: message.ProtocolIKE, Encr: message.Encr3DES, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 2}, false},
		{"", "", "group3", Suite{}, true},
		{"", "", "groupx", Suite{}, true},
	}
	for _, tc := range tests {
		s, err := IKESuite(tc.enc, tc.auth, tc.dh)
		if (err != nil) != tc.err || (!tc.err && s != tc.want) {
			t.Errorf("IKESuite(%q,%q,%q) = %+v, %v", tc.enc, tc.auth, tc.dh, s, err)
		}
	}
	esp := []struct {
		enc, auth, pfs string
		want           Suite
		err            bool
	}{
		{"", "", "", Suite{Protocol: message.ProtocolESP, Encr: message.Encr3DES, Integ: message.IntegHMACSHA196}, false},
		{"aes-256-gcm", "", "group19", Suite{Protocol: message.ProtocolESP, Encr: message.EncrAESGCM16, EncrKeyBits: 256, DH: 19}, false},
		{"aes-128-cbc", "hmac-sha-256-128", "", Suite{Protocol: message.ProtocolESP, Encr: message.EncrAESCBC, EncrKeyBits: 128, Integ: message.IntegHMACSHA256128}, false},
		{"aes-256-gcm", "hmac-sha1-96", "", Suite{}, true},
		{"", "hmac-md5-96", "", Suite{}, true},
		{"", "", "group1", Suite{Protocol: message.ProtocolESP, Encr: message.Encr3DES, Integ: message.IntegHMACSHA196, DH: 1}, false},
		{"", "", "group4", Suite{}, true},
	}
	for _, tc := range esp {
		s, err := ESPSuite(tc.enc, tc.auth, tc.pfs)
		if (err != nil) != tc.err || (!tc.err && s != tc.want) {
			t.Errorf("ESPSuite(%q,%q,%q) = %+v, %v", tc.enc, tc.auth, tc.pfs, s, err)
		}
	}
}

func BenchmarkSealOpen(b *testing.B) {
	for _, s := range []Suite{
		{Encr: message.EncrAESCBC, EncrKeyBits: 256, Integ: message.IntegHMACSHA256128},
		{Encr: message.EncrAESGCM16, EncrKeyBits: 256},
		{Encr: message.EncrChaCha20Poly1305, EncrKeyBits: 256},
	} {
		b.Run(s.EncryptionName(), func(b *testing.B) {
			c, _ := s.NewCipher(make([]byte, s.EncrKeyLen()), make([]byte, s.IntegKeyLen()), rand.Reader)
			pt := make([]byte, 256)
			aad := make([]byte, 32)
			b.SetBytes(256)
			for b.Loop() {
				body, _ := c.Seal(aad, pt)
				if _, err := c.Open(aad, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDH(b *testing.B) {
	for _, g := range Groups {
		b.Run(string(rune('0'+g/10))+string(rune('0'+g%10)), func(b *testing.B) {
			peer, _ := NewDH(g, rand.Reader)
			for b.Loop() {
				d, _ := NewDH(g, rand.Reader)
				if _, err := d.Shared(peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Test3DESLayout: ENCR_3DES (RFC 7296 section 3.3.2, ID 3) in the SK
// payload is an 8-octet IV, CBC over 8-octet blocks, then the ICV; the
// proposal carries no Key Length attribute and the key is 24 octets (the
// Junos default encryption-algorithm, 3des-cbc, in IKEv2).
func Test3DESLayout(t *testing.T) {
	s := Suite{Protocol: message.ProtocolIKE, Encr: message.Encr3DES, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 14}
	if err := s.Valid(); err != nil || s.EncrKeyLen() != 24 || s.EncryptionName() != "3des-cbc" {
		t.Fatalf("valid %v, key %d, name %s", err, s.EncrKeyLen(), s.EncryptionName())
	}
	if tr := s.Transforms()[0]; tr.ID != 3 || tr.KeyLength() != 0 {
		t.Fatalf("ENCR transform %+v", tr)
	}
	key := []byte("0123456789abcdefghijklmn")
	iv := []byte("IVIVIVIV")
	c, err := s.NewCipher(key, bytes.Repeat([]byte{1}, s.IntegKeyLen()), bytes.NewReader(iv))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("thirteen byte")
	body, err := c.Seal([]byte("hdr"), pt)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 8+16+12 || !bytes.Equal(body[:8], iv) {
		t.Fatalf("body %x", body)
	}
	b, _ := des.NewTripleDESCipher(key)
	dec := make([]byte, 16)
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(dec, body[8:24])
	if !bytes.Equal(dec[:13], pt) || dec[15] != 2 {
		t.Fatalf("decrypted %x", dec)
	}
	if err := (Suite{Protocol: message.ProtocolIKE, Encr: message.Encr3DES, EncrKeyBits: 192, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 14}).Valid(); err == nil {
		t.Error("3DES with a Key Length attribute accepted")
	}
}
