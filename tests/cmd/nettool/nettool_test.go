package main

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(replied ...bool) []probe {
		var ps []probe
		for i, r := range replied {
			ps = append(ps, probe{sent: t0.Add(time.Duration(i) * 10 * time.Millisecond), replied: r, rtt: time.Millisecond})
		}
		return ps
	}
	cases := []struct {
		name     string
		probes   []probe
		lost     []int
		outages  int
		longest  float64
		received int
	}{
		{"none", nil, nil, 0, 0, 0},
		{"all answered", mk(true, true, true), nil, 0, 0, 3},
		{"one gap", mk(true, false, false, true), []int{1, 2}, 1, 20, 2},
		{"two gaps, longest second", mk(false, true, false, false, false, true), []int{0, 2, 3, 4}, 2, 30, 2},
		{"lost to the end", mk(true, false, false), []int{1, 2}, 1, 20, 1},
		{"all lost", mk(false, false), []int{0, 1}, 1, 20, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := summarize("192.0.2.1", c.probes, 0)
			if r.Sent != len(c.probes) || r.Received != c.received {
				t.Errorf("sent %d received %d, want %d %d", r.Sent, r.Received, len(c.probes), c.received)
			}
			if !reflect.DeepEqual(r.Lost, c.lost) {
				t.Errorf("lost %v, want %v", r.Lost, c.lost)
			}
			if len(r.Outages) != c.outages || r.LongestOutageMs != c.longest {
				t.Errorf("outages %v longest %v, want %d and %v", r.Outages, r.LongestOutageMs, c.outages, c.longest)
			}
		})
	}
}

// quoted builds the IPv4+UDP header an ICMP error quotes.
func quoted(proto byte, dport int) []byte {
	b := make([]byte, 28)
	b[0] = 0x45
	b[9] = proto
	binary.BigEndian.PutUint16(b[22:], uint16(dport))
	return b
}

func TestHopOf(t *testing.T) {
	msg := func(typ icmp.Type, code int, body icmp.MessageBody) []byte {
		b, err := (&icmp.Message{Type: typ, Code: code, Body: body}).Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name  string
		b     []byte
		port  int
		final bool
		ok    bool
	}{
		{"time exceeded", msg(ipv4.ICMPTypeTimeExceeded, 0, &icmp.TimeExceeded{Data: quoted(17, 33440)}), 33440, false, true},
		{"port unreachable", msg(ipv4.ICMPTypeDestinationUnreachable, 3, &icmp.DstUnreach{Data: quoted(17, 33441)}), 33441, true, true},
		{"host unreachable is not final", msg(ipv4.ICMPTypeDestinationUnreachable, 1, &icmp.DstUnreach{Data: quoted(17, 33442)}), 33442, false, true},
		{"quotes TCP", msg(ipv4.ICMPTypeTimeExceeded, 0, &icmp.TimeExceeded{Data: quoted(6, 33440)}), 0, false, false},
		{"short quote", msg(ipv4.ICMPTypeTimeExceeded, 0, &icmp.TimeExceeded{Data: quoted(17, 1)[:21]}), 0, false, false},
		{"echo reply", msg(ipv4.ICMPTypeEchoReply, 0, &icmp.Echo{ID: 1, Seq: 1}), 0, false, false},
		{"garbage", []byte{1}, 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, final, ok := hopOf(c.b)
			if port != c.port || final != c.final || ok != c.ok {
				t.Errorf("hopOf = %d %v %v, want %d %v %v", port, final, ok, c.port, c.final, c.ok)
			}
		})
	}
}

func FuzzHopOf(f *testing.F) {
	b, _ := (&icmp.Message{Type: ipv4.ICMPTypeTimeExceeded, Body: &icmp.TimeExceeded{Data: quoted(17, 33440)}}).Marshal(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { hopOf(b) })
}

// frame builds an Ethernet frame holding an IPv4 packet of proto with
// payload p.
func frame(proto byte, p []byte, fragOff uint16) []byte {
	b := make([]byte, 14+20, 14+20+len(p))
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	b[14] = 0x45
	binary.BigEndian.PutUint16(b[14+6:], fragOff)
	b[14+9] = proto
	return append(b, p...)
}

func espHdr(spi, seq uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b, spi)
	binary.BigEndian.PutUint32(b[4:], seq)
	return b
}

func udp(sport, dport uint16, p []byte) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	return append(b, p...)
}

func TestESPOf(t *testing.T) {
	cases := []struct {
		name     string
		f        []byte
		spi, seq uint32
		ok       bool
	}{
		{"raw ESP", frame(50, espHdr(0x1234, 7), 0), 0x1234, 7, true},
		{"ESP in UDP 4500", frame(17, udp(4500, 4500, espHdr(9, 1)), 0), 9, 1, true},
		{"udp-encapsulate 4565", frame(17, udp(33000, 4565, espHdr(10, 2)), 0), 10, 2, true},
		{"IKE non-ESP marker", frame(17, udp(4500, 4500, espHdr(0, 5)), 0), 0, 0, false},
		{"IKE on 500", frame(17, udp(500, 500, espHdr(1, 1)), 0), 0, 0, false},
		{"later fragment", frame(50, espHdr(1, 1), 100), 0, 0, false},
		{"truncated ESP", frame(50, espHdr(1, 1)[:6], 0), 0, 0, false},
		{"ICMP", frame(1, espHdr(1, 1), 0), 0, 0, false},
		{"not IPv4", append(make([]byte, 12), 0x86, 0xdd, 0x60), 0, 0, false},
		{"empty", nil, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, spi, seq, ok := espOf(c.f)
			if spi != c.spi || seq != c.seq || ok != c.ok {
				t.Errorf("espOf = %d %d %v, want %d %d %v", spi, seq, ok, c.spi, c.seq, c.ok)
			}
		})
	}
}

func TestESPWatchCountsRepeats(t *testing.T) {
	w := ESPWatch{SPIs: map[string]*SPIWatch{}}
	for _, s := range []uint32{1, 2, 3, 1000, 1001, 2, 1002} {
		w.add("7 a>b", s)
	}
	w.add("8 a>b", 5)
	w.add("7 b>a", 2)
	s := w.SPIs["7 a>b"]
	if s.Packets != 7 || s.Repeats != 1 || s.Rewinds != 1 || s.Max != 1002 || s.First != 1 {
		t.Errorf("spi 7: %+v", s)
	}
	for _, k := range []string{"8 a>b", "7 b>a"} {
		if w.SPIs[k].Repeats != 0 {
			t.Errorf("%s: %+v", k, w.SPIs[k])
		}
	}
}

func FuzzESPOf(f *testing.F) {
	f.Add(frame(50, espHdr(1, 1), 0))
	f.Add(frame(17, udp(4500, 4500, espHdr(9, 1)), 0))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _, _ = espOf(b) })
}
