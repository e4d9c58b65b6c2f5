package transform

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"
)

// The transcribed constants are what the RFCs define: groups 1, 2 and 5
// are safe primes; group 24's q is prime, divides p-1 and is g's order.
func TestLegacyGroups(t *testing.T) {
	one := big.NewInt(1)
	for _, g := range []uint16{1, 2, 5} {
		m := modpGroup(g)
		q := new(big.Int).Rsh(new(big.Int).Sub(m.p, one), 1)
		if !m.p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
			t.Errorf("group %d: p is not a safe prime", g)
		}
	}
	if bits := map[uint16]int{1: 768, 2: 1024, 5: 1536, 24: 2048}; true {
		for g, n := range bits {
			if l := modpGroup(g).p.BitLen(); l != n {
				t.Errorf("group %d: %d bits", g, l)
			}
		}
	}
	m, q := modpGroup(24), modp2048s256Order
	if !m.p.ProbablyPrime(20) || !q.ProbablyPrime(20) || q.BitLen() != 256 {
		t.Fatal("group 24: p or q not prime")
	}
	if new(big.Int).Mod(new(big.Int).Sub(m.p, one), q).Sign() != 0 {
		t.Fatal("group 24: q does not divide p-1")
	}
	if new(big.Int).Exp(m.g, q, m.p).Cmp(one) != 0 {
		t.Fatal("group 24: g^q != 1")
	}
	for _, g := range LegacyGroups {
		a, err1 := NewDH(g, rand.Reader)
		b, err2 := NewDH(g, rand.Reader)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		s1, err1 := a.Shared(b.Public())
		s2, err2 := b.Shared(a.Public())
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) || len(s1) != len(modpGroup(g).pBytes) {
			t.Fatalf("group %d: shared secrets differ", g)
		}
	}
}
