package plane

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Drop describes a dropped packet for the trace file (flag packet). The
// plane reports at most DropReportsPerSecond of them, so an attack cannot
// fill the disk; the counters count them all. RFC 4303 section 3.4.2 asks
// for packets with an unknown SPI to be audited this way.
type Drop struct {
	Reason   string
	Set      string // the service set, when known
	SPI      uint32
	Src, Dst netip.AddrPort // outer addresses inbound, inner outbound
	// Packet is the start of the dropped packet (at most DropSnap bytes,
	// a copy): an inner IP packet, or with ESP set an ESP packet as it
	// arrived (header, then ciphertext). Decode describes it.
	Packet []byte
	ESP    bool
}

// DropSnap bounds the bytes of a dropped packet kept for its report.
const DropSnap = 96

// Decode describes d.Packet layer by layer with gopacket's decoders
// (issue 15: fwdd's own parser stays on the hot path; a drop report is
// rate-limited, so it can afford an independent decoder), e.g.
// "IPv4 10.0.1.2>10.0.0.2 ttl 64 len 84 | ICMPv4 EchoRequest id 1 seq 1".
// Ciphertext is never decoded: an ESP packet shows its SPI and sequence.
func (d Drop) Decode() string {
	if len(d.Packet) == 0 {
		return ""
	}
	first := layers.LayerTypeIPv4
	switch {
	case d.ESP:
		first = layers.LayerTypeIPSecESP
	case d.Packet[0]>>4 == 6:
		first = layers.LayerTypeIPv6
	}
	pk := gopacket.NewPacket(d.Packet, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var parts []string
	for _, l := range pk.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			if l.SrcIP == nil { // gopacket keeps the layer it failed to decode
				continue
			}
			parts = append(parts, fmt.Sprintf("IPv4 %v>%v ttl %d len %d", l.SrcIP, l.DstIP, l.TTL, l.Length))
		case *layers.IPv6:
			if l.SrcIP == nil {
				continue
			}
			parts = append(parts, fmt.Sprintf("IPv6 %v>%v hop %d len %d", l.SrcIP, l.DstIP, l.HopLimit, l.Length))
		case *layers.TCP:
			parts = append(parts, fmt.Sprintf("TCP %d>%d seq %d%s", l.SrcPort, l.DstPort, l.Seq, tcpFlags(l)))
		case *layers.UDP:
			parts = append(parts, fmt.Sprintf("UDP %d>%d len %d", l.SrcPort, l.DstPort, l.Length))
		case *layers.ICMPv4:
			parts = append(parts, fmt.Sprintf("ICMPv4 %v id %d seq %d", l.TypeCode, l.Id, l.Seq))
		case *layers.ICMPv6:
			parts = append(parts, fmt.Sprintf("ICMPv6 %v", l.TypeCode))
		case *layers.IPSecAH:
			parts = append(parts, fmt.Sprintf("AH spi %#x seq %d", l.SPI, l.Seq))
		case *layers.IPSecESP:
			parts = append(parts, fmt.Sprintf("ESP spi %#x seq %d", l.SPI, l.Seq))
			return strings.Join(parts, " | ")
		case gopacket.ErrorLayer:
			parts = append(parts, "undecodable: "+l.Error().Error())
		}
	}
	return strings.Join(parts, " | ")
}

func tcpFlags(l *layers.TCP) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{l.SYN, "SYN"}, {l.ACK, "ACK"}, {l.FIN, "FIN"}, {l.RST, "RST"}, {l.PSH, "PSH"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return ""
	}
	return " [" + strings.Join(f, ",") + "]"
}

// DropReportsPerSecond bounds the drop reports.
const DropReportsPerSecond = 20

type dropLimiter struct {
	mu     sync.Mutex
	window time.Time
	n      int
}

// report hands d to p.OnDrop unless this second's reports are used up.
func (p *Plane) report(d Drop) {
	f := p.OnDrop
	if f == nil {
		return
	}
	now := p.Now()
	l := &p.drops
	l.mu.Lock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	ok := l.n <= DropReportsPerSecond
	l.mu.Unlock()
	if ok {
		if len(d.Packet) > DropSnap {
			d.Packet = d.Packet[:DropSnap]
		}
		// The caller's buffer is reused once report returns.
		d.Packet = append([]byte(nil), d.Packet...)
		f(d)
	}
}
