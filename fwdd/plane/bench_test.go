package plane

import (
	"crypto/aes"
	"crypto/cipher"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"golang.zx2c4.com/wireguard/tun"
)

// anchorNs measures the anchor of every data-plane benchmark in this run:
// Go's AES-128-GCM seal of a 1400-byte packet (esp.BenchmarkAnchorAESGCMSeal).
func anchorNs() float64 {
	block, _ := aes.NewCipher(make([]byte, 16))
	aead, _ := cipher.NewGCM(block)
	buf := make([]byte, 1400, 1416)
	var nonce [12]byte
	const n = 20000
	start := time.Now()
	for i := 0; i < n; i++ {
		aead.Seal(buf[:0], nonce[:], buf, nonce[:8])
	}
	return float64(time.Since(start).Nanoseconds()) / n
}

func BenchmarkAnchorAESGCMSeal(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 16))
	aead, _ := cipher.NewGCM(block)
	buf := make([]byte, 1400, 1416)
	var nonce [12]byte
	b.SetBytes(1400)
	b.ReportAllocs()
	for b.Loop() {
		aead.Seal(buf[:0], nonce[:], buf, nonce[:8])
	}
}

type discardWire struct{ n int }

func (w *discardWire) WriteOuter(p [][]byte) error                          { w.n += len(p); return nil }
func (w *discardWire) SendUDP(netip.AddrPort, netip.AddrPort, []byte) error { return nil }

type discardTUN struct{ n int }

func (d *discardTUN) File() *os.File                         { return nil }
func (d *discardTUN) Read([][]byte, []int, int) (int, error) { return 0, os.ErrClosed }
func (d *discardTUN) Write(b [][]byte, _ int) (int, error)   { d.n += len(b); return len(b), nil }
func (d *discardTUN) MTU() (int, error)                      { return 1500, nil }
func (d *discardTUN) Name() (string, error)                  { return "discard", nil }
func (d *discardTUN) Events() <-chan tun.Event               { return nil }
func (d *discardTUN) Close() error                           { return nil }
func (d *discardTUN) BatchSize() int                         { return MaxBatch }

var benchTransforms = []struct {
	enc, auth string
	ek, ak    int
	proto     pb.IPsecProtocol // AH and bundle (issue 13); ESP otherwise
}{
	{"aes-128-gcm", "", 20, 0, 0},
	{"aes-256-gcm", "", 36, 0, 0},
	{"chacha20-poly1305", "", 36, 0, 0},
	{"aes-128-cbc", "hmac-sha1-96", 16, 20, 0},
	{"aes-256-cbc", "hmac-sha-256-128", 32, 32, 0},
	{"ah", "hmac-sha1-96", 0, 20, pb.IPsecProtocol_IPSEC_PROTOCOL_AH},
	{"ah", "hmac-sha-256-128", 0, 32, pb.IPsecProtocol_IPSEC_PROTOCOL_AH},
	{"bundle-aes-128-cbc", "hmac-sha1-96", 16, 20, pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE},
}

// benchSAs are the SAs of one bench transform.
func benchSAs(tr int, key, akey []byte, local, remote string, in, out uint32) []*pb.SA {
	t := benchTransforms[tr]
	enc := t.enc
	switch t.proto {
	case pb.IPsecProtocol_IPSEC_PROTOCOL_AH:
		enc = ""
	case pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE:
		enc = "aes-128-cbc"
	}
	sas := dynamicSAs(enc, t.auth, key, akey, local, remote, in, out, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	for _, sa := range sas {
		sa.Protocol = t.proto
		if t.proto == pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE {
			sa.AuxiliarySpi = sa.Spi + 1
		}
	}
	return sas
}

const benchBatch = 64

// BenchmarkOutbound pushes batches of 1400-byte packets through the
// outbound pipeline (SPD, SAD, sequence, parallel seal, outer headers) to
// a discarding wire. anchors/pkt is the cost of one packet in anchors.
func BenchmarkOutbound(b *testing.B) {
	anchor := anchorNs()
	for ti, tr := range benchTransforms {
		b.Run(tr.enc+"+"+tr.auth, func(b *testing.B) {
			db, _ := sad.Open(sad.Options{})
			p := New(db)
			defer p.Workers.Close()
			p.SetWire(&discardWire{})
			if err := p.Configure(dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")); err != nil {
				b.Fatal(err)
			}
			sas := benchSAs(ti, make([]byte, tr.ek), make([]byte, tr.ak), "192.0.2.1", "192.0.2.2", 0x1001, 0x2002)
			if err := db.Install(sas, 0); err != nil {
				b.Fatal(err)
			}
			s := newSender(p, &Inside{Junos: "ms-1/2/0.1", Dev: &discardTUN{}})
			pkt := pad(ping(hostB, hostA), 1400-32)
			for i := 0; i < benchBatch; i++ {
				s.cur.sizes[i] = len(pkt)
			}
			b.SetBytes(int64(len(pkt)) * benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i := 0; i < benchBatch; i++ {
					copy(s.cur.bufs[i][Headroom:], pkt)
				}
				s.batch(benchBatch)
			}
			perPkt := float64(b.Elapsed().Nanoseconds()) / float64(b.N*benchBatch)
			b.ReportMetric(perPkt, "ns/pkt")
			b.ReportMetric(perPkt/anchor, "anchors/pkt")
		})
	}
}

// BenchmarkInbound runs batches of sealed 1400-byte packets through the
// inbound pipeline (SPI lookup, parallel open, checks, statistics) to a
// discarding TUN device. The SA has no anti-replay so the same packets can
// be offered again.
func BenchmarkInbound(b *testing.B) {
	anchor := anchorNs()
	for ti, tr := range benchTransforms {
		b.Run(tr.enc+"+"+tr.auth, func(b *testing.B) {
			// Seal a batch on a sender plane.
			dbA, _ := sad.Open(sad.Options{})
			a := New(dbA)
			defer a.Workers.Close()
			w := &captureWire{}
			a.SetWire(w)
			a.Configure(dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"))
			key, akey := make([]byte, tr.ek), make([]byte, tr.ak)
			if err := dbA.Install(benchSAs(ti, key, akey, "192.0.2.1", "192.0.2.2", 0x1001, 0x2002), 0); err != nil {
				b.Fatal(err)
			}
			s := newSender(a, &Inside{Junos: "ms-1/2/0.1", Dev: &discardTUN{}})
			pkt := pad(ping(hostB, hostA), 1400-32)
			for i := 0; i < benchBatch; i++ {
				copy(s.cur.bufs[i][Headroom:], pkt)
				s.cur.sizes[i] = len(pkt)
			}
			s.batch(benchBatch)
			// Receive on plane b.
			dbB, _ := sad.Open(sad.Options{})
			p := New(dbB)
			defer p.Workers.Close()
			p.Configure(dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
			in := benchSAs(ti, key, akey, "192.0.2.2", "192.0.2.1", 0x2002, 0x1001)
			in[0].ReplayWindow = 0
			dbB.Install(in, 0)
			m := map[string]*Inside{"ms-1/2/0.1": {Junos: "ms-1/2/0.1", Dev: &discardTUN{}}}
			p.insides.Store(&m)
			r := p.NewReceiver()
			ds := make([]Datagram, len(w.pkts))
			bufs := make([][]byte, len(w.pkts))
			for i := range bufs {
				bufs[i] = make([]byte, len(w.pkts[i]))
			}
			local := netip.MustParseAddrPort("192.0.2.2:0")
			b.SetBytes(int64(len(pkt)) * int64(len(ds)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i, o := range w.pkts {
					copy(bufs[i], o)
					ds[i] = Datagram{Data: bufs[i][20:], Local: local, Kind: KindESP}
					if tr.proto != 0 {
						ds[i] = Datagram{Data: bufs[i], Local: local, Kind: KindAH}
					}
				}
				r.Receive(ds)
			}
			if tot := dbB.ServiceSetTotals("ss1"); tot.Get(sad.DecryptedPackets)+tot.Get(sad.AHInputPackets) == 0 {
				b.Fatal("nothing decrypted")
			}
			perPkt := float64(b.Elapsed().Nanoseconds()) / float64(b.N*len(ds))
			b.ReportMetric(perPkt, "ns/pkt")
			b.ReportMetric(perPkt/anchor, "anchors/pkt")
		})
	}
}

type captureWire struct{ pkts [][]byte }

func (w *captureWire) WriteOuter(p [][]byte) error {
	for _, o := range p {
		w.pkts = append(w.pkts, append([]byte(nil), o...))
	}
	return nil
}
func (w *captureWire) SendUDP(netip.AddrPort, netip.AddrPort, []byte) error { return nil }
