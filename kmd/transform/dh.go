package transform

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// DH is one side of a Diffie-Hellman exchange (RFC 7296 section 1.2, the KE
// payload). Public and the shared secret have the fixed length of the
// group.
type DH interface {
	Group() uint16
	// Public is the KE payload data.
	Public() []byte
	// Shared computes g^ir from the peer's KE data.
	Shared(peer []byte) ([]byte, error)
}

// Groups lists the supported groups, strongest-first as sitesec proposes
// them by default.
var Groups = []uint16{19, 20, 21, 31, 14, 15, 16}

// SupportedGroup reports whether g is implemented (Groups and
// LegacyGroups).
func SupportedGroup(g uint16) bool {
	for _, x := range append(Groups[:len(Groups):len(Groups)], LegacyGroups...) {
		if x == g {
			return true
		}
	}
	return false
}

// NewDH generates a key pair in group g from rand.
func NewDH(g uint16, rand io.Reader) (DH, error) {
	if c := ecCurve(g); c != nil {
		k, err := c.GenerateKey(rand)
		if err != nil {
			return nil, fmt.Errorf("transform: group %d: %w", g, err)
		}
		return &ecDH{group: g, key: k}, nil
	}
	m := modpGroup(g)
	if m == nil {
		return nil, fmt.Errorf("transform: unsupported DH group %d", g)
	}
	// The exponent is twice the group's strength, the upper end of RFC
	// 3526 section 8: 320, 384 and 512 bits for groups 14, 15 and 16.
	x := make([]byte, m.expLen)
	if _, err := io.ReadFull(rand, x); err != nil {
		return nil, fmt.Errorf("transform: group %d: %w", g, err)
	}
	return newMODP(g, m, x)
}

// NewDHFromPrivate builds a key pair from a known private value, for tests
// against published vectors.
func NewDHFromPrivate(g uint16, priv []byte) (DH, error) {
	if c := ecCurve(g); c != nil {
		k, err := c.NewPrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("transform: group %d: %w", g, err)
		}
		return &ecDH{group: g, key: k}, nil
	}
	m := modpGroup(g)
	if m == nil {
		return nil, fmt.Errorf("transform: unsupported DH group %d", g)
	}
	return newMODP(g, m, priv)
}

func ecCurve(g uint16) ecdh.Curve {
	switch g {
	case 19:
		return ecdh.P256()
	case 20:
		return ecdh.P384()
	case 21:
		return ecdh.P521()
	case 31:
		return ecdh.X25519()
	}
	return nil
}

type ecDH struct {
	group uint16
	key   *ecdh.PrivateKey
}

func (d *ecDH) Group() uint16 { return d.group }

// Public returns x | y for the ECP groups (RFC 5903 section 7: no point
// format octet) and the 32-byte u-coordinate for Curve25519 (RFC 8031).
func (d *ecDH) Public() []byte {
	b := d.key.PublicKey().Bytes()
	if d.group != 31 {
		return b[1:]
	}
	return b
}

// Shared returns the x-coordinate of the shared point (RFC 5903 section
// 7), or the X25519 output, which crypto/ecdh rejects when all zero
// (RFC 8031 section 2.2).
func (d *ecDH) Shared(peer []byte) ([]byte, error) {
	if d.group != 31 {
		peer = append([]byte{4}, peer...)
	}
	pk, err := d.key.Curve().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("transform: group %d: bad peer public value: %w", d.group, err)
	}
	s, err := d.key.ECDH(pk)
	if err != nil {
		return nil, fmt.Errorf("transform: group %d: %w", d.group, err)
	}
	return s, nil
}

type modp struct {
	p, g   *big.Int
	pBytes []byte
	expLen int
}

type modpDH struct {
	group uint16
	m     *modp
	x     *big.Int
	pub   []byte
}

func newMODP(g uint16, m *modp, x []byte) (DH, error) {
	xi := new(big.Int).SetBytes(x)
	if xi.Sign() == 0 {
		return nil, errors.New("transform: zero DH exponent")
	}
	y := new(big.Int).Exp(m.g, xi, m.p)
	return &modpDH{group: g, m: m, x: xi, pub: y.FillBytes(make([]byte, len(m.pBytes)))}, nil
}

func (d *modpDH) Group() uint16  { return d.group }
func (d *modpDH) Public() []byte { return d.pub }

// Shared returns (peer)^x mod p left-padded to the length of p (RFC 7296
// section 2.14: "g^ir ... represented as a string of octets in big endian
// order padded with zeros if necessary to make it the length of the
// modulus").
func (d *modpDH) Shared(peer []byte) ([]byte, error) {
	if len(peer) != len(d.m.pBytes) {
		return nil, fmt.Errorf("transform: group %d: public value of %d bytes, want %d", d.group, len(peer), len(d.m.pBytes))
	}
	y := new(big.Int).SetBytes(peer)
	// Reject 0, 1 and p-1 and anything >= p (RFC 6989 section 2.1).
	pm1 := new(big.Int).Sub(d.m.p, big.NewInt(1))
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return nil, fmt.Errorf("transform: group %d: degenerate public value", d.group)
	}
	s := new(big.Int).Exp(y, d.x, d.m.p)
	if s.Cmp(big.NewInt(1)) == 0 {
		return nil, fmt.Errorf("transform: group %d: degenerate shared secret", d.group)
	}
	return s.FillBytes(make([]byte, len(d.m.pBytes))), nil
}

var modpGroups = map[uint16]*modp{}

func modpGroup(g uint16) *modp {
	return modpGroups[g]
}

func init() {
	for g, hex := range map[uint16]string{14: modp2048, 15: modp3072, 16: modp4096} {
		p, ok := new(big.Int).SetString(strings.Join(strings.Fields(hex), ""), 16)
		if !ok {
			panic("transform: bad MODP prime")
		}
		modpGroups[g] = &modp{p: p, g: big.NewInt(2), pBytes: p.Bytes(), expLen: map[uint16]int{14: 40, 15: 48, 16: 64}[g]}
	}
}
