package message

import "fmt"

// many is the count for payloads that may repeat.
const many = 255

type allowKey struct {
	exchange ExchangeType
	response bool
}

// allowed is the table of payloads each exchange may carry, with the most
// of each (RFC 7296 sections 1.2 to 1.5; section 2.5 for duplicates).
// Minimums depend on the exchange's purpose and are checked by the tasks.
var allowed = map[allowKey]map[PayloadType]uint8{
	{IKESAInit, false}: {PayloadSA: 1, PayloadKE: 1, PayloadNonce: 1, PayloadNotify: many, PayloadVendorID: many, PayloadCERTREQ: many},
	{IKESAInit, true}:  {PayloadSA: 1, PayloadKE: 1, PayloadNonce: 1, PayloadNotify: many, PayloadVendorID: many, PayloadCERTREQ: many},
	{IKEAuth, false}: {PayloadIDi: 1, PayloadCERT: many, PayloadCERTREQ: many, PayloadIDr: 1, PayloadAUTH: 1, PayloadCP: 1,
		PayloadSA: 1, PayloadTSi: 1, PayloadTSr: 1, PayloadNotify: many, PayloadVendorID: many, PayloadEAP: 1},
	{IKEAuth, true}: {PayloadIDr: 1, PayloadCERT: many, PayloadAUTH: 1, PayloadCP: 1,
		PayloadSA: 1, PayloadTSi: 1, PayloadTSr: 1, PayloadNotify: many, PayloadVendorID: many, PayloadEAP: 1},
	{CreateChildSA, false}: {PayloadSA: 1, PayloadNonce: 1, PayloadKE: 1, PayloadTSi: 1, PayloadTSr: 1, PayloadNotify: many, PayloadVendorID: many},
	{CreateChildSA, true}:  {PayloadSA: 1, PayloadNonce: 1, PayloadKE: 1, PayloadTSi: 1, PayloadTSr: 1, PayloadNotify: many, PayloadVendorID: many},
	{Informational, false}: {PayloadNotify: many, PayloadDelete: many, PayloadCP: 1, PayloadVendorID: many},
	{Informational, true}:  {PayloadNotify: many, PayloadDelete: many, PayloadCP: 1, PayloadVendorID: many},
}

// Check enforces the allowed-payload table on m: a payload not allowed in
// its exchange, or repeated more than allowed, is INVALID_SYNTAX. Unknown
// non-critical payloads were already accepted by the parser and pass.
func Check(m *Message) error {
	tab, ok := allowed[allowKey{m.Exchange, m.IsResponse()}]
	if !ok {
		return &Error{Notify: NotifyInvalidSyntax, Msg: fmt.Sprintf("unknown exchange %s", m.Exchange)}
	}
	var seen [256]uint8
	for _, p := range m.Payloads {
		if _, unknown := p.(*Unknown); unknown {
			continue
		}
		t := p.Type()
		seen[t]++
		if seen[t] > tab[t] {
			if tab[t] == 0 {
				return errSyntax("%s not allowed in %s", t, m.Exchange)
			}
			return errSyntax("duplicate %s in %s", t, m.Exchange)
		}
	}
	return nil
}
