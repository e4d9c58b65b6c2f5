package ikesa

import (
	"testing"

	"github.com/sitesec/sitesec/kmd/message"
)

// FuzzExchange feeds authenticated but arbitrary requests and responses to
// an established IKE SA: whatever the payloads, the SA must not panic,
// and it must keep answering. The input is an exchange selector and a
// payload chain.
func FuzzExchange(f *testing.F) {
	seeds := []*message.Message{
		{Payloads: []message.Payload{&message.Delete{Protocol: message.ProtocolESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}}}}},
		{Payloads: []message.Payload{&message.Notify{Protocol: message.ProtocolESP, SPI: []byte{0, 0, 1, 0}, NotifyType: message.NotifyRekeySA},
			&message.SA{Proposals: []message.Proposal{{Number: 1, Protocol: message.ProtocolESP, SPI: []byte{9, 9, 9, 9}, Transforms: []message.Transform{message.NewTransform(message.TransformENCR, message.EncrAESCBC, 128), message.NewTransform(message.TransformINTEG, message.IntegHMACSHA256128, 0)}}}},
			&message.Nonce{Data: make([]byte, 32)}, &message.TS{Selectors: []message.Selector{PrefixSelector(mustPrefix("10.1.0.0/16"))}},
			&message.TS{Responder: true, Selectors: []message.Selector{PrefixSelector(mustPrefix("10.0.0.0/16"))}}}},
		{Payloads: []message.Payload{&message.SA{Proposals: []message.Proposal{{Number: 1, Protocol: message.ProtocolIKE, SPI: make([]byte, 8)}}}, &message.KE{Group: 19, Data: make([]byte, 64)}, &message.Nonce{Data: make([]byte, 32)}}},
		{},
	}
	for i, m := range seeds {
		raw, _ := m.Marshal()
		if len(raw) > message.HeaderLen {
			f.Add(byte(i), byte(raw[16]), raw[message.HeaderLen:])
		} else {
			f.Add(byte(i), byte(0), []byte{})
		}
	}
	f.Fuzz(func(t *testing.T, sel byte, first byte, chain []byte) {
		payloads, err := message.ParsePayloads(message.PayloadType(first), chain)
		if err != nil {
			return
		}
		w, sa := establish(t, 99)
		r := w.r.only(t)
		ex := []message.ExchangeType{message.CreateChildSA, message.Informational, message.IKEAuth, message.IKESAInit}[sel%4]
		m := &message.Message{Header: message.Header{Exchange: ex}, Payloads: payloads}
		if sel&4 != 0 {
			// A response to a request the left side has outstanding.
			sa.CreateChild()
			w.queue = nil
			m.Flags = message.FlagResponse
			m.MessageID = sa.mgr.NextID()
			m.Exchange = message.CreateChildSA
			raw, err := (&SA{out: r.out, SPIi: r.SPIi, SPIr: r.SPIr, Config: r.Config}).Encode(m)
			if err != nil {
				return
			}
			for _, b := range raw {
				w.queue = append(w.queue, datagram{from: w.r, to: w.l, src: r.Local, dst: sa.Local, raw: b})
			}
		} else {
			m.MessageID = 2
			raw, err := (&SA{out: sa.out, SPIi: sa.SPIi, SPIr: sa.SPIr, Initiator: true, Config: sa.Config}).Encode(m)
			if err != nil {
				return
			}
			for _, b := range raw {
				w.queue = append(w.queue, datagram{from: w.l, to: w.r, src: sa.Local, dst: r.Local, raw: b})
			}
		}
		w.run()
		// Both SAs either still work or died cleanly.
		for _, x := range []*SA{sa, r} {
			if x.State == StateEstablished {
				if err := x.CreateChild(); err != nil {
					t.Fatal(err)
				}
				w.run()
			}
		}
	})
}
