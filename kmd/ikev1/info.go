package ikev1

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/sitesec/sitesec/kmd/isakmp"
)

// sendInfo sends an informational exchange protected by the ISAKMP SA:
// HDR*, HASH(1), N/D (RFC 2409 section 5.7). It is not answered.
func (sa *ISAKMPSA) sendInfo(rest []isakmp.Payload) {
	if sa.State != StateEstablished {
		return
	}
	x := &exchange{mid: sa.newMID()}
	x.iv = messageIV(sa.Suite.newHash(), sa.k.iv, x.mid)
	ps := append([]isakmp.Payload{{Type: isakmp.PayloadHash, Body: sa.qmHash(x.mid, nil, rest)}}, rest...)
	sa.sendExchange(x, ps, false)
}

func (sa *ISAKMPSA) sendNotify(typ uint16, proto uint8, spi []byte) {
	sa.sendInfo([]isakmp.Payload{{Type: isakmp.PayloadNotify, Body: isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: proto, SPI: spi, Type: typ}.Marshal()}})
}

// sendDPD sends R-U-THERE with the next sequence number (RFC 3706
// section 5.3).
func (sa *ISAKMPSA) sendDPD() {
	sa.dpdSeq++
	sa.t.Stats.DPDSent++
	spi := append(sa.ICookie[:], sa.RCookie[:]...)
	sa.sendInfo([]isakmp.Payload{{Type: isakmp.PayloadNotify, Body: isakmp.Notify{
		DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, SPI: spi, Type: isakmp.NotifyRUThere,
		Data: binary.BigEndian.AppendUint32(nil, sa.dpdSeq),
	}.Marshal()}})
}

// handleInfo reads an informational exchange: DELETE of ESP or ISAKMP
// SAs, DPD, and error notifies. Before phase 1 completes only an
// unencrypted notify can come; it ends the exchange we started.
func (sa *ISAKMPSA) handleInfo(local, remote netip.AddrPort, h isakmp.Header, body []byte) error {
	t := sa.t
	if sa.State != StateEstablished {
		if h.Flags&isakmp.FlagEncryption != 0 {
			return errors.New("ikev1: encrypted informational before phase 1 completed")
		}
		ps, _, err := isakmp.ParsePayloads(h.Next, body)
		if err != nil {
			return err
		}
		if t.opts.Trace != nil {
			t.opts.Trace(t, false, h, ps)
		}
		if n, err := isakmp.ParseNotify(isakmp.Find(ps, isakmp.PayloadNotify)); err == nil && sa.Initiator && n.Type < 16384 {
			// Unauthenticated: retransmissions go on, so a forged notify
			// cannot end the exchange early (RFC 2408 section 5.5).
			return fmt.Errorf("ikev1: peer refused phase 1 (notify %d)", n.Type)
		}
		return nil
	}
	x := &exchange{mid: h.MessageID, iv: messageIV(sa.Suite.newHash(), sa.k.iv, h.MessageID)}
	ps, err := sa.open(h, body, x)
	if err != nil {
		return err
	}
	if t.opts.Trace != nil {
		t.opts.Trace(t, false, h, ps)
	}
	if !hmac.Equal(ps[0].Body, sa.qmHash(h.MessageID, nil, ps[1:])) {
		return errors.New("ikev1: informational HASH(1) does not verify")
	}
	t.moved(local, remote)
	t.activity = t.now()
	for _, p := range ps[1:] {
		switch p.Type {
		case isakmp.PayloadNotify:
			n, err := isakmp.ParseNotify(p.Body)
			if err != nil {
				return err
			}
			switch n.Type {
			case isakmp.NotifyRUThere:
				t.Stats.DPDReceived++
				sa.sendInfo([]isakmp.Payload{{Type: isakmp.PayloadNotify, Body: isakmp.Notify{
					DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, SPI: n.SPI, Type: isakmp.NotifyRUThereAck, Data: n.Data,
				}.Marshal()}})
			case isakmp.NotifyRUThereAck:
				if len(n.Data) == 4 && binary.BigEndian.Uint32(n.Data) == sa.dpdSeq {
					t.Stats.DPDAnswered++
					t.Activity()
				}
			}
		case isakmp.PayloadDelete:
			d, err := isakmp.ParseDelete(p.Body)
			if err != nil {
				return err
			}
			t.Stats.DeletesIn++
			switch d.Protocol {
			case isakmp.ProtoESP, isakmp.ProtoAH:
				for _, spi := range d.SPIs {
					if len(spi) != 4 {
						continue
					}
					// The peer deletes its inbound SA, our outbound.
					v := binary.BigEndian.Uint32(spi)
					for _, c := range append([]*Child(nil), t.Children...) {
						if c.SPIOut == v || (c.Suite.Bundle() && c.AuxOut == v) {
							t.deleteChild(c, false)
						}
					}
				}
			case isakmp.ProtoISAKMP:
				for _, spi := range d.SPIs {
					for _, o := range t.SAs {
						if len(spi) == 16 && bytes.Equal(spi[:8], o.ICookie[:]) && bytes.Equal(spi[8:], o.RCookie[:]) {
							o.State = StateDead
						}
					}
				}
				t.prune()
			}
		}
	}
	return nil
}
