package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// AHCorrupt is what `nettool ahcorrupt` prints: the AH packet it saw
// leave (or arrive on) an interface and sent again with its sequence
// number moved ahead, which the ICV covers (RFC 4302 section 3.3.3), so
// that the receiver must drop it as an AH authentication failure (not a
// replay: the new number is unseen).
type AHCorrupt struct {
	SPI    uint32 `json:"spi"`
	Seq    uint32 `json:"seq"`
	NewSeq uint32 `json:"new_seq"`
	Src    string `json:"src"`
	Dst    string `json:"dst"`
}

func ahcorrupt(args []string) error {
	fs := flag.NewFlagSet("ahcorrupt", flag.ContinueOnError)
	ifname := fs.String("i", "", "interface")
	dur := fs.Duration("t", 10*time.Second, "how long to wait for an AH packet")
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
	buf := make([]byte, 65536)
	for end := time.Now().Add(*dur); time.Now().Before(end); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		f := buf[:n]
		if len(f) < 14+20+12 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
			continue
		}
		ip := append([]byte(nil), f[14:]...)
		if ip[0] != 0x45 || ip[9] != 51 || int(binary.BigEndian.Uint16(ip[2:])) > len(ip) {
			continue
		}
		ip = ip[:binary.BigEndian.Uint16(ip[2:])]
		r := AHCorrupt{SPI: binary.BigEndian.Uint32(ip[24:]), Seq: binary.BigEndian.Uint32(ip[28:]),
			Src: net.IP(ip[12:16]).String(), Dst: net.IP(ip[16:20]).String()}
		r.NewSeq = r.Seq + 1<<20
		binary.BigEndian.PutUint32(ip[28:], r.NewSeq)
		s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer syscall.Close(s)
		var to syscall.SockaddrInet4
		copy(to.Addr[:], ip[16:20])
		if err := syscall.Sendto(s, ip, 0, &to); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	return errors.New("no AH packet seen")
}
