package transform

import (
	"encoding/binary"
	"fmt"

	"github.com/sitesec/sitesec/kmd/message"
)

// SKEYSEED computes prf(Ni | Nr, g^ir) (RFC 7296 section 2.14).
func SKEYSEED(prf PRF, ni, nr, gir []byte) []byte {
	return prf.Sum(append(append([]byte{}, ni...), nr...), gir)
}

// RekeySKEYSEED computes prf(SK_d (old), g^ir (new) | Ni | Nr) for an IKE SA
// rekey (RFC 7296 section 2.18).
func RekeySKEYSEED(prf PRF, oldSKd, gir, ni, nr []byte) []byte {
	return prf.Sum(oldSKd, gir, ni, nr)
}

// IKEKeys are the seven secrets of RFC 7296 section 2.14.
type IKEKeys struct {
	D, Ai, Ar, Ei, Er, Pi, Pr []byte
}

// DeriveIKEKeys computes {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi |
// SK_pr} = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr).
func DeriveIKEKeys(s Suite, skeyseed, ni, nr []byte, spii, spir uint64) (IKEKeys, error) {
	prf, err := NewPRF(s.PRF)
	if err != nil {
		return IKEKeys{}, err
	}
	seed := append(append([]byte{}, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spii)
	seed = binary.BigEndian.AppendUint64(seed, spir)
	pl, il, el := prf.Size(), s.IntegKeyLen(), s.EncrKeyLen()
	km, err := prf.Plus(skeyseed, seed, pl+2*il+2*el+2*pl)
	if err != nil {
		return IKEKeys{}, err
	}
	var k IKEKeys
	for _, f := range []struct {
		dst *[]byte
		n   int
	}{{&k.D, pl}, {&k.Ai, il}, {&k.Ar, il}, {&k.Ei, el}, {&k.Er, el}, {&k.Pi, pl}, {&k.Pr, pl}} {
		*f.dst, km = km[:f.n:f.n], km[f.n:]
	}
	return k, nil
}

// ChildKeys is the key material of one CHILD SA: the initiator-to-responder
// SA's keys, then the responder-to-initiator SA's.
type ChildKeys struct {
	EncrI, IntegI, EncrR, IntegR []byte
}

// DeriveChildKeys computes KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)
// (RFC 7296 sections 2.17) and splits it: "All keys for SAs carrying data
// from the initiator to the responder are taken before SAs going from the
// responder to the initiator", encryption before integrity.
func DeriveChildKeys(prf PRF, child Suite, skd, gir, ni, nr []byte) (ChildKeys, error) {
	seed := append(append(append([]byte{}, gir...), ni...), nr...)
	el, il := child.EncrKeyLen(), child.IntegKeyLen()
	if el == 0 && child.Protocol != message.ProtocolAH {
		return ChildKeys{}, fmt.Errorf("transform: CHILD SA encryption %d", child.Encr)
	}
	if il == 0 && child.Protocol == message.ProtocolAH {
		return ChildKeys{}, fmt.Errorf("transform: AH integrity %d", child.Integ)
	}
	km, err := prf.Plus(skd, seed, 2*(el+il))
	if err != nil {
		return ChildKeys{}, err
	}
	k := ChildKeys{EncrI: km[:el:el], IntegI: km[el : el+il : el+il]}
	km = km[el+il:]
	k.EncrR, k.IntegR = km[:el:el], km[el:el+il:el+il]
	if il == 0 {
		k.IntegI, k.IntegR = nil, nil
	}
	if el == 0 {
		k.EncrI, k.EncrR = nil, nil // AH: integrity keys only
	}
	return k, nil
}
