package csr

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"

	"github.com/sitesec/sitesec/services/dn"
)

// Attribute type OIDs accepted in a subject DN (RFC 4519 section 2, RFC 4524
// section 2.4 for DC, PKCS#9 for emailAddress).
var attrOIDs = map[string]asn1.ObjectIdentifier{
	"C":            {2, 5, 4, 6},
	"ST":           {2, 5, 4, 8},
	"L":            {2, 5, 4, 7},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"CN":           {2, 5, 4, 3},
	"SERIALNUMBER": {2, 5, 4, 5},
	"STREET":       {2, 5, 4, 9},
	"DC":           {0, 9, 2342, 19200300, 100, 1, 25},
	"EMAILADDRESS": {1, 2, 840, 113549, 1, 9, 1},
	"UID":          {0, 9, 2342, 19200300, 100, 1, 1},
}

// ParseDN parses a subject as the operator types it on Junos,
// "CN=vpn1,OU=net,O=Example,L=Sunnyvale,ST=CA,C=US", into an RDN sequence
// in the order given. A comma inside a value is escaped as "\,".
// Attribute names are case-insensitive.
func ParseDN(s string) (pkix.RDNSequence, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("csr: empty subject")
	}
	var rdns pkix.RDNSequence
	for i, part := range splitEscaped(s, ',') {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("csr: subject component %d %q is not NAME=value", i+1, part)
		}
		k = strings.ToUpper(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		oid, known := attrOIDs[k]
		if !known {
			return nil, fmt.Errorf("csr: subject component %d: unknown attribute %q", i+1, k)
		}
		if v == "" {
			return nil, fmt.Errorf("csr: subject component %d: empty value for %s", i+1, k)
		}
		if k == "C" && len(v) != 2 {
			return nil, fmt.Errorf("csr: subject component %d: country %q must be two letters", i+1, v)
		}
		var val any = v
		if k == "DC" || k == "EMAILADDRESS" {
			// RFC 4524 and PKCS#9 use IA5String.
			val = asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(v)}
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: val}})
	}
	return rdns, nil
}

func splitEscaped(s string, sep byte) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			cur.WriteByte(s[i+1])
			i++
			continue
		}
		if c == sep {
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(parts, cur.String())
}

var oidNames = func() map[string]string {
	m := make(map[string]string)
	for k, v := range attrOIDs {
		m[v.String()] = k
	}
	m["1.2.840.113549.1.9.1"] = "emailAddress"
	m["2.5.4.5"] = "serialNumber"
	return m
}()

// FormatDN renders a name in certificate order, Junos style:
// "C=US, O=Example, CN=vpn1".
func FormatDN(n pkix.Name) string {
	var rdns pkix.RDNSequence
	rdns = n.ToRDNSequence()
	if len(n.Names) > 0 {
		// Names holds the parsed attributes in their original order.
		rdns = nil
		for _, a := range n.Names {
			rdns = append(rdns, pkix.RelativeDistinguishedNameSET{a})
		}
	}
	var parts []string
	for _, rdn := range rdns {
		for _, a := range rdn {
			name, ok := oidNames[a.Type.String()]
			if !ok {
				name = a.Type.String()
			}
			v := a.Value
			if rv, ok := v.(asn1.RawValue); ok {
				v = string(rv.Bytes)
			}
			if sv, ok := v.(string); ok {
				// RFC 4514 section 2.4: a comma inside a value must not
				// read as a separator (issue 14).
				v = dn.EscapeValue(sv)
			}
			parts = append(parts, fmt.Sprintf("%s=%v", name, v))
		}
	}
	return strings.Join(parts, ", ")
}
