package schema

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// TypeKind is the lexical class of a value.
type TypeKind uint8

const (
	String TypeKind = iota // free text within MinLen..MaxLen
	Uint                   // decimal number within Min..Max
	Enum                   // one of Values
	IPv4                   // dotted-quad address
	IPAddr                 // IPv4 or IPv6 address
	Prefix                 // address/length, IPv4 or IPv6
	IFD                    // physical interface: ge-0/0/0, lo0, ms-1/2/0
	IFL                    // logical interface: ge-0/0/0.0, ms-1/2/0.1
	Size                   // bytes with an optional k, m or g suffix
	Hex                    // hexadecimal digits, an optional 0x, an even count
)

// Type is the type of a leaf value or a list key, with its limits.
type Type struct {
	Kind   TypeKind
	Label  string // shown in help and completion: "<name>", "<address>"
	Min    uint64
	Max    uint64
	MinLen int
	MaxLen int
	Values []string // Enum
	Forbid string   // characters a String must not contain
	Exact  string   // a String that must be exactly this ("*")
	Unit0  bool     // IFL that may be written without its unit, meaning unit 0
}

// Canon returns v as the daemons need it: a Unit0 interface written
// without its unit gets ".0".
func (t *Type) Canon(v string) string {
	if t != nil && t.Unit0 && !strings.Contains(v, ".") {
		return v + ".0"
	}
	return v
}

var (
	ifdRE  = regexp.MustCompile(`^((ge|xe|et|fe|ms|sp|vms|mams|si|gr|ip|lt|st|so|t1|e1|t3|e3|at|as)-\d{1,2}/\d{1,2}/\d{1,3}(:\d{1,2})?|(lo|ams|fxp|em|irb|st|gr|vlan)\d{0,3})$`)
	sizeRE = regexp.MustCompile(`^(\d{1,19})([kKmMgG]?)$`)
)

// Name is a Junos identifier of 1..max characters.
func Name(max int) *Type {
	return &Type{Kind: String, Label: "<name>", MinLen: 1, MaxLen: max, Forbid: " \t\"{};[]"}
}

// Text is free text of min..max characters (descriptions, URLs).
func Text(label string, min, max int) *Type {
	return &Type{Kind: String, Label: label, MinLen: min, MaxLen: max}
}

// Range is an unsigned number within min..max.
func Range(min, max uint64) *Type {
	return &Type{Kind: Uint, Label: fmt.Sprintf("<%d..%d>", min, max), Min: min, Max: max}
}

// OneOf is an enumeration.
func OneOf(values ...string) *Type { return &Type{Kind: Enum, Values: values} }

// Predefined types.
var (
	TAddr4  = &Type{Kind: IPv4, Label: "<ipv4-address>"}
	TAddr   = &Type{Kind: IPAddr, Label: "<address>"}
	TPrefix = &Type{Kind: Prefix, Label: "<prefix>"}
	TIFD    = &Type{Kind: IFD, Label: "<interface-name>"}
	TIFL    = &Type{Kind: IFL, Label: "<interface-name.unit>"}
	// TService is a service interface: "sp-1/2/0" means its unit 0, as
	// on Junos.
	TService = &Type{Kind: IFL, Label: "<interface-name>", Unit0: true}
	TSize    = &Type{Kind: Size, Label: "<size>"}
	TStar    = &Type{Kind: String, Label: "*", Exact: "*", MinLen: 1, MaxLen: 1}
	THexKey  = &Type{Kind: Hex, Label: "<hexadecimal-key>", MaxLen: 255}
)

// Check validates v and returns a message in Junos wording, or nil.
func (t *Type) Check(v string) error {
	switch t.Kind {
	case String:
		if t.Exact != "" && v != t.Exact {
			return fmt.Errorf("invalid value '%s': only '%s' is supported", v, t.Exact)
		}
		if len(v) < t.MinLen {
			return fmt.Errorf("Must be a string of at least %d characters", t.MinLen)
		}
		if t.MaxLen > 0 && len(v) > t.MaxLen {
			return fmt.Errorf("Must be a string of %d characters or less", t.MaxLen)
		}
		if t.Forbid != "" && strings.ContainsAny(v, t.Forbid) {
			return fmt.Errorf("invalid name '%s': must not contain any of %q", v, t.Forbid)
		}
	case Uint:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid numeric value: '%s'", v)
		}
		if n < t.Min || n > t.Max {
			return fmt.Errorf("Value %d is not within range (%d..%d)", n, t.Min, t.Max)
		}
	case Enum:
		for _, e := range t.Values {
			if e == v {
				return nil
			}
		}
		return fmt.Errorf("invalid value '%s': expecting one of %s", v, strings.Join(t.Values, ", "))
	case IPv4:
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return fmt.Errorf("invalid ip address: '%s'", v)
		}
	case IPAddr:
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Errorf("invalid ip address: '%s'", v)
		}
	case Prefix:
		if _, err := ParsePrefix(v); err != nil {
			return err
		}
	case IFD:
		if !ifdRE.MatchString(v) {
			return fmt.Errorf("invalid interface name: '%s'", v)
		}
	case IFL:
		i := strings.LastIndexByte(v, '.')
		if i < 0 && t.Unit0 && ifdRE.MatchString(v) {
			return nil
		}
		if i < 0 || !ifdRE.MatchString(v[:i]) {
			return fmt.Errorf("invalid logical interface name: '%s' (expecting name.unit)", v)
		}
		if u, err := strconv.ParseUint(v[i+1:], 10, 32); err != nil || u > 1073741823 {
			return fmt.Errorf("invalid unit number in '%s'", v)
		}
	case Size:
		if _, err := ParseSize(v); err != nil {
			return err
		}
	case Hex:
		// The value is a key: the message must not repeat it.
		h := strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
		if len(h) == 0 || len(h)%2 != 0 || strings.Trim(h, "0123456789abcdefABCDEF") != "" {
			return fmt.Errorf("invalid hexadecimal key: expecting an even number of hexadecimal digits")
		}
		if len(h)/2 > t.MaxLen {
			return fmt.Errorf("Must be a key of %d bytes or less", t.MaxLen)
		}
	}
	return nil
}

// ParsePrefix accepts a prefix, or a bare address as a host prefix, as Junos
// does for source-address and next-hop routes.
func ParsePrefix(v string) (netip.Prefix, error) {
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid prefix: '%s'", v)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		addr, _, _ := strings.Cut(v, "/")
		if _, aerr := netip.ParseAddr(addr); aerr == nil {
			return netip.Prefix{}, fmt.Errorf("invalid prefix length in '%s'", v)
		}
		return netip.Prefix{}, fmt.Errorf("invalid prefix: '%s'", v)
	}
	return p, nil
}

// ParseSize parses a traceoptions size: a number of bytes with an optional
// k, m or g suffix (Junos "size 10m").
func ParseSize(v string) (uint64, error) {
	m := sizeRE.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("invalid size: '%s' (expecting a number with an optional k, m or g)", v)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size: '%s'", v)
	}
	mult := map[string]uint64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[strings.ToLower(m[2])]
	if n > (1<<63)/mult {
		return 0, fmt.Errorf("invalid size: '%s' is too large", v)
	}
	return n * mult, nil
}

// Help is the value hint for completion: the label, or the values of an
// enumeration.
func (t *Type) Help() string {
	if t.Kind == Enum {
		return "(" + strings.Join(t.Values, " | ") + ")"
	}
	return t.Label
}
