package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// basePort is where traceroute's UDP probes start (RFC 1393's classic
// traceroute uses 33434 + probe number, an unlikely port to be listened on).
const basePort = 33434

// hopOf reads an ICMP error and tells which probe port it answers and
// whether it came from the destination (port unreachable) or a router on
// the way (time exceeded). ok is false for anything else.
func hopOf(b []byte) (port int, final bool, ok bool) {
	m, err := icmp.ParseMessage(1, b)
	if err != nil {
		return 0, false, false
	}
	var data []byte
	switch body := m.Body.(type) {
	case *icmp.TimeExceeded:
		data = body.Data
	case *icmp.DstUnreach:
		data = body.Data
		final = m.Code == 3 // port unreachable
	default:
		return 0, false, false
	}
	// The quoted datagram: the IPv4 header, then at least 8 bytes of UDP
	// (RFC 792).
	if len(data) < 20 {
		return 0, false, false
	}
	ihl := int(data[0]&0x0f) * 4
	if data[0]>>4 != 4 || ihl < 20 || data[9] != 17 || len(data) < ihl+4 {
		return 0, false, false
	}
	return int(binary.BigEndian.Uint16(data[ihl+2:])), final, true
}

func trace(args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	maxHops := fs.Int("m", 8, "maximum TTL")
	wait := fs.Duration("w", time.Second, "wait for each probe's answer")
	tries := fs.Int("q", 2, "probes per TTL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one destination")
	}
	dst, err := net.ResolveIPAddr("ip4", fs.Arg(0))
	if err != nil {
		return err
	}
	ic, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("raw ICMP socket (needs root or NET_RAW): %w", err)
	}
	defer ic.Close()
	uc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return err
	}
	defer uc.Close()
	pc := ipv4.NewPacketConn(uc)
	buf := make([]byte, 1500)
	probeNo := 0
	for ttl := 1; ttl <= *maxHops; ttl++ {
		hop, final := "*", false
		for try := 0; try < *tries && hop == "*"; try++ {
			probeNo++
			port := basePort + probeNo
			if err := pc.SetTTL(ttl); err != nil {
				return err
			}
			if _, err := uc.WriteTo([]byte("sitesec-trace"), &net.UDPAddr{IP: dst.IP, Port: port}); err != nil {
				continue
			}
			deadline := time.Now().Add(*wait)
			for hop == "*" {
				_ = ic.SetReadDeadline(deadline)
				n, from, err := ic.ReadFrom(buf)
				if err != nil {
					break
				}
				if p, fin, ok := hopOf(buf[:n]); ok && p == port {
					hop, final = from.String(), fin
				}
			}
		}
		fmt.Printf("%d %s\n", ttl, hop)
		if final {
			return nil
		}
	}
	return fmt.Errorf("%s not reached in %d hops", dst, *maxHops)
}
