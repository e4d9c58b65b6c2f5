// Package dn parses, renders and compares X.501 distinguished names
// structurally, for certificate identities (ID_DER_ASN1_DN, remote-id
// distinguished-name, a certificate's subject).
//
// A name is never compared as text: a string DN is parsed by RFC 4514
// (escapes, quoted values, hex values), a DER DN by its ASN.1 structure,
// and two names are equal when their RDN sequences are (RFC 5280 section
// 7.1): the same number of RDNs, each RDN the same set of attributes
// (RFC 4512 section 2.3.1: a multi-valued RDN is unordered), each
// attribute the same type OID and a value equal after the string
// preparation of RFC 4518 (case folded, insignificant spaces removed).
// So CN="vpn, OU=Sales",O=Test (two RDNs) never equals
// CN=vpn,OU=Sales,O=Test (three).
package dn

import (
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Attribute is one AttributeTypeAndValue. Value holds a string value;
// a value of another ASN.1 type keeps its DER encoding in Raw (rendered
// "#hex", RFC 4514 section 2.4).
type Attribute struct {
	Type  asn1.ObjectIdentifier
	Value string
	Raw   []byte
}

// RDN is a RelativeDistinguishedName: a set of attributes.
type RDN []Attribute

// Name is an RDNSequence in ASN.1 order: the most significant RDN (C, O)
// first, as in a certificate. RFC 4514 strings list them the other way.
type Name []RDN

// Limits on untrusted input: a DN in an IKE ID payload or a
// configuration string is short; these bound the work of parsing.
const (
	maxLen  = 8192
	maxRDNs = 64
	maxAVAs = 16
)

// ---- DER --------------------------------------------------------------------

type derAVA struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// encoding/asn1 decodes a slice type whose name ends in SET as SET OF.
type derRDNSET []derAVA

// ParseDER parses a DER RDNSequence (the body of ID_DER_ASN1_DN, RFC 7296
// section 3.5, or a certificate's RawSubject).
func ParseDER(der []byte) (Name, error) {
	if len(der) > maxLen {
		return nil, errors.New("dn: name too long")
	}
	var seq []derRDNSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("dn: %v", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("dn: trailing data after name")
	}
	if len(seq) > maxRDNs {
		return nil, errors.New("dn: too many RDNs")
	}
	n := make(Name, 0, len(seq))
	for _, set := range seq {
		if len(set) == 0 {
			return nil, errors.New("dn: empty RDN")
		}
		if len(set) > maxAVAs {
			return nil, errors.New("dn: too many attributes in an RDN")
		}
		rdn := make(RDN, 0, len(set))
		for _, a := range set {
			rdn = append(rdn, attributeFromDER(a.Type, a.Value))
		}
		n = append(n, rdn)
	}
	return n, nil
}

// attributeFromDER decodes the directory string types (RFC 5280 section
// 4.1.2.4 DirectoryString, and IA5String for emailAddress and dc); any
// other value stays DER.
func attributeFromDER(t asn1.ObjectIdentifier, v asn1.RawValue) Attribute {
	a := Attribute{Type: slices.Clone(t)}
	if s, ok := decodeString(v); ok {
		a.Value = s
		return a
	}
	a.Raw = slices.Clone(v.FullBytes)
	return a
}

func decodeString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	b := v.Bytes
	switch v.Tag {
	case asn1.TagUTF8String:
		if !utf8.Valid(b) {
			return "", false
		}
		return string(b), true
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, 26: // 26: VisibleString
		for _, c := range b {
			if c >= 0x80 {
				return "", false
			}
		}
		return string(b), true
	case asn1.TagT61String:
		// Treated as ISO 8859-1, as most implementations do.
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(b)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		s := string(utf16.Decode(u))
		return s, !strings.ContainsRune(s, utf8.RuneError)
	case 28: // UniversalString
		if len(b)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(b)/4)
		for i := range r {
			r[i] = rune(binary.BigEndian.Uint32(b[4*i:]))
			if !utf8.ValidRune(r[i]) {
				return "", false
			}
		}
		return string(r), true
	}
	return "", false
}

// ---- RFC 4514 strings -------------------------------------------------------

// Attribute type names of RFC 4514 section 3 and the ones certificates
// commonly carry (RFC 5280 appendix A, PKCS #9 emailAddress).
var names = []struct {
	name string
	oid  asn1.ObjectIdentifier
}{
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}},
	{"SN", asn1.ObjectIdentifier{2, 5, 4, 4}},
	{"SERIALNUMBER", asn1.ObjectIdentifier{2, 5, 4, 5}},
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}},
	{"STREET", asn1.ObjectIdentifier{2, 5, 4, 9}},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}},
	{"TITLE", asn1.ObjectIdentifier{2, 5, 4, 12}},
	{"POSTALCODE", asn1.ObjectIdentifier{2, 5, 4, 17}},
	{"GIVENNAME", asn1.ObjectIdentifier{2, 5, 4, 42}},
	{"INITIALS", asn1.ObjectIdentifier{2, 5, 4, 43}},
	{"GENERATIONQUALIFIER", asn1.ObjectIdentifier{2, 5, 4, 44}},
	{"DNQUALIFIER", asn1.ObjectIdentifier{2, 5, 4, 46}},
	{"PSEUDONYM", asn1.ObjectIdentifier{2, 5, 4, 65}},
	{"DC", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}},
	{"UID", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}},
	{"EMAILADDRESS", asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}},
}

// aliases are other spellings people and tools use.
var aliases = map[string]string{
	"E": "EMAILADDRESS", "EMAIL": "EMAILADDRESS", "S": "ST", "T": "TITLE",
	"G": "GIVENNAME", "GN": "GIVENNAME", "SERIAL": "SERIALNUMBER",
	"COMMONNAME": "CN", "COUNTRYNAME": "C", "LOCALITYNAME": "L",
	"STATEORPROVINCENAME": "ST", "ORGANIZATIONNAME": "O",
	"ORGANIZATIONALUNITNAME": "OU", "STREETADDRESS": "STREET",
	"DOMAINCOMPONENT": "DC", "USERID": "UID", "SURNAME": "SN",
}

func typeOID(s string) (asn1.ObjectIdentifier, error) {
	u := strings.ToUpper(s)
	u = strings.TrimPrefix(u, "OID.")
	if a, ok := aliases[u]; ok {
		u = a
	}
	for _, n := range names {
		if n.name == u {
			return slices.Clone(n.oid), nil
		}
	}
	// numericoid (RFC 4512 section 1.4).
	parts := strings.Split(u, ".")
	if len(parts) < 2 || len(parts) > 32 {
		return nil, fmt.Errorf("dn: unknown attribute type %q", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("dn: unknown attribute type %q", s)
		}
		v := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, fmt.Errorf("dn: unknown attribute type %q", s)
			}
			v = v*10 + int(c-'0')
		}
		oid[i] = v
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] >= 40) {
		return nil, fmt.Errorf("dn: bad object identifier %q", s)
	}
	return oid, nil
}

func typeName(oid asn1.ObjectIdentifier) string {
	for _, n := range names {
		if n.oid.Equal(oid) {
			return n.name
		}
	}
	return oid.String()
}

// Parse parses an RFC 4514 distinguished name: RDNs separated by ',' (or
// ';', RFC 2253), attributes of one RDN by '+', values with backslash
// escapes ("\," or "\2C"), a "#hex" DER value, or an RFC 1779 quoted
// value. Spaces around separators are ignored. The RDNs of the string
// are listed least significant first (RFC 4514 section 2.1), so the
// result is the reverse of the string's order.
func Parse(s string) (Name, error) {
	if len(s) > maxLen {
		return nil, errors.New("dn: name too long")
	}
	p := &parser{s: s}
	var n Name
	p.space()
	if p.eof() {
		return Name{}, nil
	}
	for {
		rdn, err := p.rdn()
		if err != nil {
			return nil, err
		}
		n = append(n, rdn)
		if len(n) > maxRDNs {
			return nil, errors.New("dn: too many RDNs")
		}
		p.space()
		if p.eof() {
			break
		}
		if c := p.s[p.i]; c != ',' && c != ';' {
			return nil, fmt.Errorf("dn: unexpected %q at offset %d", c, p.i)
		}
		p.i++
		p.space()
	}
	slices.Reverse(n)
	return n, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) space() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) rdn() (RDN, error) {
	var rdn RDN
	for {
		a, err := p.ava()
		if err != nil {
			return nil, err
		}
		rdn = append(rdn, a)
		if len(rdn) > maxAVAs {
			return nil, errors.New("dn: too many attributes in an RDN")
		}
		p.space()
		if p.eof() || p.s[p.i] != '+' {
			return rdn, nil
		}
		p.i++
		p.space()
	}
}

func (p *parser) ava() (Attribute, error) {
	start := p.i
	for !p.eof() && p.s[p.i] != '=' && p.s[p.i] != ',' && p.s[p.i] != '+' && p.s[p.i] != ';' {
		p.i++
	}
	if p.eof() || p.s[p.i] != '=' {
		return Attribute{}, fmt.Errorf("dn: %q has no '='", p.s[start:p.i])
	}
	oid, err := typeOID(strings.TrimSpace(p.s[start:p.i]))
	if err != nil {
		return Attribute{}, err
	}
	p.i++
	p.space()
	a := Attribute{Type: oid}
	switch {
	case !p.eof() && p.s[p.i] == '#':
		p.i++
		start := p.i
		for !p.eof() && isHex(p.s[p.i]) {
			p.i++
		}
		raw, err := hex.DecodeString(p.s[start:p.i])
		if err != nil || len(raw) == 0 {
			return Attribute{}, fmt.Errorf("dn: bad hex value at offset %d", start)
		}
		var v asn1.RawValue
		if rest, err := asn1.Unmarshal(raw, &v); err != nil || len(rest) != 0 {
			return Attribute{}, fmt.Errorf("dn: hex value at offset %d is not one DER value", start)
		}
		if s, ok := decodeString(v); ok {
			a.Value = s
		} else {
			a.Raw = raw
		}
	case !p.eof() && p.s[p.i] == '"':
		p.i++
		v, err := p.value(true)
		if err != nil {
			return Attribute{}, err
		}
		if p.eof() || p.s[p.i] != '"' {
			return Attribute{}, errors.New("dn: unterminated quoted value")
		}
		p.i++
		a.Value = v
	default:
		v, err := p.value(false)
		if err != nil {
			return Attribute{}, err
		}
		a.Value = v
	}
	return a, nil
}

// value reads an attribute value up to the next unescaped separator
// (or the closing quote); unescaped trailing spaces are not part of it.
func (p *parser) value(quoted bool) (string, error) {
	var b []byte
	keep := 0 // length of b up to the last escaped or non-space byte
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case quoted && c == '"':
			return string(b), p.utf8(b)
		case !quoted && (c == ',' || c == '+' || c == ';'):
			return string(b[:keep]), p.utf8(b)
		case !quoted && (c == '"' || c == '<' || c == '>' || c == 0):
			// RFC 4514 section 3: these must be escaped.
			return "", fmt.Errorf("dn: unescaped %q at offset %d", c, p.i)
		case c == '\\':
			p.i++
			if p.eof() {
				return "", errors.New("dn: backslash at end of name")
			}
			d := p.s[p.i]
			if isHex(d) {
				if p.i+1 >= len(p.s) || !isHex(p.s[p.i+1]) {
					return "", fmt.Errorf("dn: bad escape at offset %d", p.i-1)
				}
				x, _ := hex.DecodeString(p.s[p.i : p.i+2])
				b = append(b, x[0])
				p.i += 2
			} else if strings.IndexByte(" \"#+,;<=>\\", d) >= 0 {
				b = append(b, d)
				p.i++
			} else {
				return "", fmt.Errorf("dn: bad escape at offset %d", p.i-1)
			}
			keep = len(b)
			continue
		default:
			b = append(b, c)
			if c != ' ' {
				keep = len(b)
			}
		}
		p.i++
	}
	if quoted {
		return "", errors.New("dn: unterminated quoted value")
	}
	return string(b[:keep]), p.utf8(b)
}

func (p *parser) utf8(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("dn: value is not UTF-8")
	}
	return nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// String renders n by RFC 4514: least significant RDN first, every
// character that would be read as syntax escaped.
func (n Name) String() string {
	var b strings.Builder
	for i := len(n) - 1; i >= 0; i-- {
		if i != len(n)-1 {
			b.WriteByte(',')
		}
		for j, a := range n[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(a.String())
		}
	}
	return b.String()
}

// String renders one attribute as TYPE=value (RFC 4514 section 2.3).
func (a Attribute) String() string {
	t := typeName(a.Type)
	if a.Raw != nil {
		return t + "=#" + hex.EncodeToString(a.Raw)
	}
	return t + "=" + EscapeValue(a.Value)
}

// EscapeValue applies RFC 4514 section 2.4 to one attribute value, so
// that no character of it reads as a separator.
func EscapeValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == 0:
			b.WriteString(`\00`)
		case strings.IndexByte("\"+,;<>\\", c) >= 0,
			(c == ' ' || c == '#') && i == 0,
			c == ' ' && i == len(v)-1:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ---- comparison -------------------------------------------------------------

// Equal reports whether a and b are the same name (RFC 5280 section 7.1):
// RDN by RDN in order.
func Equal(a, b Name) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// EqualEitherOrder is Equal, or Equal with a's RDNs reversed: a name
// written by a person (remote-id, a peer identity string) may list the
// RDNs in RFC 4514 order or in certificate order, as OpenSSL and
// strongSwan print them. Structure and values still compare exactly.
func EqualEitherOrder(a, b Name) bool {
	if Equal(a, b) {
		return true
	}
	r := slices.Clone(a)
	slices.Reverse(r)
	return Equal(r, b)
}

// Equal reports whether two RDNs hold the same set of attributes.
func (r RDN) Equal(o RDN) bool {
	if len(r) != len(o) {
		return false
	}
	used := make([]bool, len(o))
next:
	for _, a := range r {
		for j, b := range o {
			if !used[j] && a.Equal(b) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}

// Equal compares type OIDs, then string values after RFC 4518
// preparation, or DER values byte for byte.
func (a Attribute) Equal(b Attribute) bool {
	if !a.Type.Equal(b.Type) {
		return false
	}
	if a.Raw != nil || b.Raw != nil {
		return a.Raw != nil && b.Raw != nil && string(a.Raw) == string(b.Raw)
	}
	return Prepare(a.Value) == Prepare(b.Value)
}

// Prepare is the string preparation of RFC 4518 for caseIgnoreMatch, the
// matching rule of the directory string attributes (section 2): control
// and zero-width characters map to nothing, other spaces to SPACE, case
// is folded, and insignificant space (section 2.6.1) is removed: leading
// and trailing spaces go, inner runs of spaces count as one.
func Prepare(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == '\u00AD' || r == '\u1806' || r == '\u034F' || r == '\u200B' ||
			r == '\u2060' || r == '\uFEFF' || r == '\uFFFC' ||
			('\u180B' <= r && r <= '\u180D') || ('\uFE00' <= r && r <= '\uFE0F'):
			continue // RFC 4518 section 2.2: mapped to nothing
		case r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r' || r == '\u0085' || unicode.Is(unicode.Zs, r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteString(strings.ToLower(strings.ToUpper(string(r))))
	}
	return b.String()
}

// Contains reports whether some RDN of n equals r.
func (n Name) Contains(r RDN) bool {
	return slices.ContainsFunc(n, r.Equal)
}

// Wildcard is the value of a pattern attribute that matches any value of
// its type (remote-id distinguished-name wildcard).
const Wildcard = "*"

// Matches reports whether n satisfies pattern: every RDN of the pattern
// is an RDN of n, where an attribute whose value is exactly "*" stands
// for any value of its type. Order does not matter; structure does: an
// RDN of the pattern matches one RDN of n, never a part of a value.
func (n Name) Matches(pattern Name) bool {
	for _, pr := range pattern {
		if !slices.ContainsFunc(n, func(r RDN) bool { return r.matches(pr) }) {
			return false
		}
	}
	return true
}

func (r RDN) matches(pattern RDN) bool {
	if len(r) != len(pattern) {
		return false
	}
	used := make([]bool, len(r))
next:
	for _, p := range pattern {
		for j, a := range r {
			if used[j] {
				continue
			}
			if a.Equal(p) || (p.Raw == nil && p.Value == Wildcard && a.Type.Equal(p.Type)) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}
