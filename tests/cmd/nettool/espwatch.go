package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ESPWatch is what `nettool espwatch` prints: per SPI, the ESP packets
// seen on an interface and every sequence number seen twice or going
// backwards. A repeated (SPI, sequence number) means a sender reused its
// counter (RFC 4303 section 3.3.3: it must never cycle), which a restart
// must not cause.
type ESPWatch struct {
	// SPIs by "SPI SRC>DST".
	SPIs map[string]*SPIWatch `json:"spis"`
}

// SPIWatch is one SPI's record.
type SPIWatch struct {
	Packets  int    `json:"packets"`
	First    uint32 `json:"first_seq"`
	Max      uint32 `json:"max_seq"`
	Repeats  int    `json:"repeats"` // sequence numbers seen before
	Rewinds  int    `json:"rewinds"` // lower than the highest seen (includes repeats)
	Example  string `json:"example,omitempty"`
	seen     map[uint32]bool
	lastSeen uint32
}

// espOf extracts the SPI and sequence number of an ESP or AH packet in
// an Ethernet frame: IPv4 protocol 50 or 51 (flow "AH ..."), or UDP to or from port 4500 or 4565
// (RFC 3948 ESP in UDP, with a non-zero SPI where IKE has its marker).
func espOf(frame []byte) (flow string, spi, seq uint32, ok bool) {
	if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return "", 0, 0, false
	}
	ip := frame[14:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return "", 0, 0, false
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl {
		return "", 0, 0, false
	}
	// Only first fragments carry the ESP header.
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		return "", 0, 0, false
	}
	p := ip[ihl:]
	switch ip[9] {
	case 51:
		// AH (RFC 4302): SPI and sequence number after next header,
		// length and reserved; keyed apart from ESP.
		if len(p) < 12 {
			return "", 0, 0, false
		}
		spi, seq = binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint32(p[8:])
		flow = fmt.Sprintf("AH %d %d.%d.%d.%d>%d.%d.%d.%d", spi, ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19])
		return flow, spi, seq, true
	case 50:
	case 17:
		if len(p) < 8 {
			return "", 0, 0, false
		}
		sport, dport := binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
		if !(sport == 4500 || dport == 4500 || sport == 4565 || dport == 4565) {
			return "", 0, 0, false
		}
		p = p[8:]
	default:
		return "", 0, 0, false
	}
	if len(p) < 8 {
		return "", 0, 0, false
	}
	spi, seq = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
	if spi == 0 { // the non-ESP marker: IKE
		return "", 0, 0, false
	}
	// One SA is one SPI towards one destination; manual bidirectional SAs
	// use the same SPI both ways, so the sender is part of the key.
	flow = fmt.Sprintf("%d %d.%d.%d.%d>%d.%d.%d.%d", spi, ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19])
	return flow, spi, seq, true
}

// add records one packet of flow (SPI, source and destination).
func (w *ESPWatch) add(flow string, seq uint32) {
	s := w.SPIs[flow]
	if s == nil {
		s = &SPIWatch{First: seq, seen: map[uint32]bool{}}
		w.SPIs[flow] = s
	}
	s.Packets++
	if s.seen[seq] {
		s.Repeats++
		if s.Example == "" {
			s.Example = fmt.Sprintf("sequence %d seen again after %d", seq, s.lastSeen)
		}
	}
	if seq < s.Max {
		s.Rewinds++
	}
	s.seen[seq] = true
	s.lastSeen = seq
	if seq > s.Max {
		s.Max = seq
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func espwatch(args []string) error {
	fs := flag.NewFlagSet("espwatch", flag.ContinueOnError)
	ifname := fs.String("i", "", "interface")
	dur := fs.Duration("t", 10*time.Second, "how long to watch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ifc, err := net.InterfaceByName(*ifname)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("packet socket (needs root or NET_RAW): %w", err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return err
	}
	tv := syscall.NsecToTimeval(int64(100 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	w := ESPWatch{SPIs: map[string]*SPIWatch{}}
	buf := make([]byte, 65536)
	// SIGINT or SIGTERM end the watch early, with the report.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	for end := time.Now().Add(*dur); time.Now().Before(end) && len(stop) == 0; {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		if flow, _, seq, ok := espOf(buf[:n]); ok {
			w.add(flow, seq)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(w)
}
