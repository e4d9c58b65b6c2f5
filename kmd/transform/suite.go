package transform

import (
	"fmt"
	"slices"

	"github.com/sitesec/sitesec/kmd/message"
)

// Suite is one negotiated set of transforms: for an IKE SA encryption,
// PRF, integrity (0 with AEAD) and DH group; for a CHILD SA encryption,
// integrity, ESN and the PFS group (0 without PFS).
type Suite struct {
	Protocol    message.ProtocolID
	Encr        uint16
	EncrKeyBits uint16
	PRF         uint16
	Integ       uint16
	DH          uint16
	ESN         bool
}

// AEAD reports whether the encryption transform also protects integrity.
func (s Suite) AEAD() bool {
	return s.Encr == message.EncrAESGCM16 || s.Encr == message.EncrChaCha20Poly1305
}

// EncrKeyLen is the encryption key length in bytes, with the 4-byte salt
// of AES-GCM (RFC 4106 section 8.1, RFC 5282 section 7.1) and
// ChaCha20-Poly1305 (RFC 7634 section 2).
func (s Suite) EncrKeyLen() int {
	switch s.Encr {
	case message.EncrAESCBC:
		return int(s.EncrKeyBits) / 8
	case message.Encr3DES:
		return 24
	case message.EncrAESGCM16:
		return int(s.EncrKeyBits)/8 + 4
	case message.EncrChaCha20Poly1305:
		return 36
	}
	return 0
}

// IntegKeyLen is the integrity key length in bytes (0 with AEAD).
func (s Suite) IntegKeyLen() int {
	if s.AEAD() {
		return 0
	}
	return integs[s.Integ].keyLen
}

// Valid checks that every transform of s is implemented and consistent.
func (s Suite) Valid() error {
	if s.Protocol == message.ProtocolAH {
		// RFC 7296 section 3.3.3: AH has integrity, optional DH and
		// ESN, and no encryption transform.
		if s.Encr != 0 {
			return fmt.Errorf("transform: AH with encryption %d", s.Encr)
		}
		if _, ok := integs[s.Integ]; !ok {
			return fmt.Errorf("transform: AH needs an integrity transform, have %d", s.Integ)
		}
		if s.DH != 0 && !SupportedGroup(s.DH) {
			return fmt.Errorf("transform: unsupported PFS group %d", s.DH)
		}
		return nil
	}
	switch s.Encr {
	case message.EncrAESCBC:
		if s.EncrKeyBits != 128 && s.EncrKeyBits != 192 && s.EncrKeyBits != 256 {
			return fmt.Errorf("transform: AES-CBC key of %d bits", s.EncrKeyBits)
		}
		if _, ok := integs[s.Integ]; !ok {
			return fmt.Errorf("transform: AES-CBC needs an integrity transform, have %d", s.Integ)
		}
	case message.Encr3DES:
		// RFC 7296 section 3.3.5: a fixed key length, no attribute.
		if s.EncrKeyBits != 0 {
			return fmt.Errorf("transform: 3DES with a key length of %d bits", s.EncrKeyBits)
		}
		if _, ok := integs[s.Integ]; !ok {
			return fmt.Errorf("transform: 3DES-CBC needs an integrity transform, have %d", s.Integ)
		}
	case message.EncrAESGCM16:
		if s.EncrKeyBits != 128 && s.EncrKeyBits != 256 {
			return fmt.Errorf("transform: AES-GCM key of %d bits", s.EncrKeyBits)
		}
	case message.EncrChaCha20Poly1305:
		if s.EncrKeyBits != 0 && s.EncrKeyBits != 256 {
			return fmt.Errorf("transform: ChaCha20-Poly1305 key of %d bits", s.EncrKeyBits)
		}
	default:
		return fmt.Errorf("transform: unsupported encryption %d", s.Encr)
	}
	if s.AEAD() && s.Integ != message.IntegNone {
		return fmt.Errorf("transform: AEAD with integrity %d", s.Integ)
	}
	if s.Protocol == message.ProtocolIKE {
		if _, err := NewPRF(s.PRF); err != nil {
			return err
		}
		if !SupportedGroup(s.DH) {
			return fmt.Errorf("transform: unsupported DH group %d", s.DH)
		}
	} else if s.DH != 0 && !SupportedGroup(s.DH) {
		return fmt.Errorf("transform: unsupported PFS group %d", s.DH)
	}
	return nil
}

// Transforms renders s as proposal transforms.
func (s Suite) Transforms() []message.Transform {
	kl := s.EncrKeyBits
	if s.Encr == message.EncrChaCha20Poly1305 {
		kl = 0 // RFC 7634 section 2: no Key Length attribute.
	}
	var ts []message.Transform
	if s.Protocol != message.ProtocolAH {
		ts = append(ts, message.NewTransform(message.TransformENCR, s.Encr, kl))
	}
	if s.Protocol == message.ProtocolIKE {
		ts = append(ts, message.NewTransform(message.TransformPRF, s.PRF, 0))
	}
	if !s.AEAD() {
		ts = append(ts, message.NewTransform(message.TransformINTEG, s.Integ, 0))
	}
	if s.DH != 0 {
		ts = append(ts, message.NewTransform(message.TransformDH, s.DH, 0))
	}
	if s.Protocol != message.ProtocolIKE {
		esn := message.ESNNone
		if s.ESN {
			esn = message.ESNUsed
		}
		ts = append(ts, message.NewTransform(message.TransformESN, esn, 0))
	}
	return ts
}

// Proposal renders s as a proposal numbered n with the given SPI.
func (s Suite) Proposal(n uint8, spi []byte) message.Proposal {
	return message.Proposal{Number: n, Protocol: s.Protocol, SPI: spi, Transforms: s.Transforms()}
}

// FromProposal reads a proposal that holds one transform of each type (a
// responder's answer) back into a Suite.
func FromProposal(p message.Proposal) (Suite, error) {
	s := Suite{Protocol: p.Protocol}
	seen := map[message.TransformType]bool{}
	for _, t := range p.Transforms {
		if seen[t.Type] {
			return s, fmt.Errorf("transform: answer has two transforms of type %d", t.Type)
		}
		seen[t.Type] = true
		switch t.Type {
		case message.TransformENCR:
			s.Encr, s.EncrKeyBits = t.ID, t.KeyLength()
			if s.Encr == message.EncrChaCha20Poly1305 {
				s.EncrKeyBits = 256
			}
		case message.TransformPRF:
			s.PRF = t.ID
		case message.TransformINTEG:
			s.Integ = t.ID
		case message.TransformDH:
			s.DH = t.ID
		case message.TransformESN:
			s.ESN = t.ID == message.ESNUsed
		}
	}
	return s, s.Valid()
}

// Select is the responder's choice (RFC 7296 section 2.7): the first of the
// peer's proposals, in the peer's order, that one of the local proposals
// accepts, reduced to one transform of each type. Local proposals may hold
// several transforms of a type. It returns the chosen proposal (with the
// peer's number and SPI) and its Suite.
func Select(local, peer []message.Proposal) (message.Proposal, Suite, bool) {
	for _, rp := range peer {
		for _, lp := range local {
			if lp.Protocol != rp.Protocol {
				continue
			}
			if chosen, ok := intersect(lp, rp); ok {
				s, err := FromProposal(chosen)
				if err == nil {
					return chosen, s, true
				}
			}
		}
	}
	return message.Proposal{}, Suite{}, false
}

func sameTransform(a, b message.Transform) bool {
	return a.Type == b.Type && a.ID == b.ID && a.KeyLength() == b.KeyLength() && len(a.Attributes) == len(b.Attributes)
}

// intersect picks, for each transform type either side uses, the first of
// the peer's transforms the local proposal accepts. A type the local side
// does not list accepts only "none" (ID 0): integrity with AEAD, no PFS,
// no ESN.
func intersect(local, peer message.Proposal) (message.Proposal, bool) {
	var types []message.TransformType
	for _, t := range append(slices.Clone(local.Transforms), peer.Transforms...) {
		if !slices.Contains(types, t.Type) {
			types = append(types, t.Type)
		}
	}
	slices.Sort(types)
	out := message.Proposal{Number: peer.Number, Protocol: peer.Protocol, SPI: peer.SPI}
	for _, typ := range types {
		var allowed []message.Transform
		for _, t := range local.Transforms {
			if t.Type == typ {
				allowed = append(allowed, t)
			}
		}
		if len(allowed) == 0 {
			allowed = []message.Transform{{Type: typ, ID: 0}}
		}
		var offered []message.Transform
		for _, t := range peer.Transforms {
			if t.Type == typ {
				offered = append(offered, t)
			}
		}
		if len(offered) == 0 {
			if slices.ContainsFunc(allowed, func(t message.Transform) bool { return t.ID == 0 }) {
				continue
			}
			return out, false
		}
		found := false
		for _, o := range offered {
			if slices.ContainsFunc(allowed, func(a message.Transform) bool { return sameTransform(a, o) }) {
				if o.ID != 0 || typ == message.TransformESN {
					out.Transforms = append(out.Transforms, o)
				}
				found = true
				break
			}
		}
		if !found {
			return out, false
		}
	}
	return out, true
}

// Proposals numbers suites as proposals for offering, in order.
func Proposals(suites []Suite, spi []byte) []message.Proposal {
	var out []message.Proposal
	for _, s := range suites {
		out = append(out, s.Proposal(uint8(len(out)+1), spi))
	}
	return out
}

// DHGroupOf returns the DH group of the first proposal that has one.
func DHGroupOf(ps []message.Proposal) uint16 {
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type == message.TransformDH && t.ID != 0 {
				return t.ID
			}
		}
	}
	return 0
}

// HasGroup reports whether any proposal offers DH group g.
func HasGroup(ps []message.Proposal, g uint16) bool {
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type == message.TransformDH && t.ID == g {
				return true
			}
		}
	}
	return false
}

// EncryptionName is the Junos name of the encryption transform.
func (s Suite) EncryptionName() string {
	switch s.Encr {
	case 0:
		return "" // AH
	case message.EncrAESCBC:
		return fmt.Sprintf("aes-%d-cbc", s.EncrKeyBits)
	case message.Encr3DES:
		return "3des-cbc"
	case message.EncrAESGCM16:
		return fmt.Sprintf("aes-%d-gcm", s.EncrKeyBits)
	case message.EncrChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return fmt.Sprintf("encr-%d", s.Encr)
}

// IntegrityName is the Junos name of the integrity transform, "" for AEAD.
func (s Suite) IntegrityName() string {
	if s.AEAD() {
		return ""
	}
	if in, ok := integs[s.Integ]; ok {
		return in.name
	}
	return fmt.Sprintf("integ-%d", s.Integ)
}
