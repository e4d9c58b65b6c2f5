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
