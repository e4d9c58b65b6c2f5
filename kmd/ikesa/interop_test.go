//go:build strongswan

// The tests in this file drive a real strongSwan charon and run only from
// testdata/strongswan/run.sh (scripts/interop.sh), which builds them with
// -tags strongswan and starts charon first.

package ikesa

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

// The interop tests run beside a real charon (testdata/strongswan/run.sh):
// charon on 127.0.0.1 ports 1500/14500, this side on 127.0.0.2 ports
// 500/4500 through real UDP sockets, playing fwdd (the non-ESP marker on
// 4500, RFC 3948 section 2.2).

type udpHost struct {
	t           *testing.T
	s500, s4500 *net.UDPConn
	in          chan datagramIn
	installed   map[uint32]*ChildSA
	installs    int
	table       *Table
	addr        netip.Addr
}

type datagramIn struct {
	local, remote netip.AddrPort
	raw           []byte
}

func newUDPHost(t *testing.T, cfg *Config) *udpHost { return newUDPHostOn(t, cfg, "127.0.0.2") }

func newUDPHostOn(t *testing.T, cfg *Config, addr string) *udpHost {
	if os.Getenv("SITESEC_STRONGSWAN") == "" {
		t.Fatal("SITESEC_STRONGSWAN unset: run through testdata/strongswan/run.sh, which starts charon")
	}
	h := &udpHost{t: t, in: make(chan datagramIn, 64), installed: map[uint32]*ChildSA{}, addr: netip.MustParseAddr(addr)}
	for _, p := range []struct {
		port uint16
		c    **net.UDPConn
	}{{500, &h.s500}, {4500, &h.s4500}} {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.addr, p.port)))
		if err != nil {
			t.Fatal(err)
		}
		*p.c = c
		t.Cleanup(func() { c.Close() })
		go h.read(c, p.port)
	}
	h.table = &Table{
		Options: Options{Rand: rand.Reader, Now: time.Now, Host: h, Trace: func(sa *SA, sent bool, m *message.Message) {
			t.Logf("%v %s", sent, m)
		}},
		Lookup: func(local, remote netip.AddrPort) *Config { return cfg },
	}
	return h
}

func (h *udpHost) Send(sa *SA, pkts [][]byte, keepalive bool) {
	if keepalive {
		h.s4500.WriteToUDPAddrPort([]byte{0xff}, sa.Remote)
		return
	}
	for _, p := range pkts {
		var err error
		if sa.Local.Port() == 4500 {
			_, err = h.s4500.WriteToUDPAddrPort(append([]byte{0, 0, 0, 0}, p...), sa.Remote)
		} else {
			_, err = h.s500.WriteToUDPAddrPort(p, sa.Remote)
		}
		if err != nil {
			h.t.Errorf("send: %v", err)
		}
	}
}

func (h *udpHost) Install(sa *SA, c *ChildSA, replaces *ChildSA) error {
	h.installed[c.SPIIn] = c
	h.installs++
	return nil
}

func (h *udpHost) Uninstall(sa *SA, c *ChildSA) { delete(h.installed, c.SPIIn) }

func (h *udpHost) Event(sa *SA, e Event) {
	switch e.Kind {
	case EventIKERekeyed:
		h.table.Add(e.New)
	case EventDead:
		h.table.Remove(sa)
	case EventEstablished:
		h.table.Matured(sa)
	}
}

func (h *udpHost) read(c *net.UDPConn, port uint16) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		if f := os.Getenv("SITESEC_CAPTURE"); f != "" && port == 500 {
			// Keep the first IKE_SA_INIT request for the codec's tests.
			if _, err := os.Stat(f); err != nil {
				os.WriteFile(f, b, 0o644)
			}
		}
		if port == 4500 {
			if len(b) < 4 || b[0]|b[1]|b[2]|b[3] != 0 {
				continue // ESP or a keepalive
			}
			b = b[4:]
		}
		h.in <- datagramIn{local: netip.AddrPortFrom(h.addr, port), remote: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), raw: b}
	}
}

// pump runs the SAs until done, like a runner goroutine.
func (h *udpHost) pump(what string, done func() bool) {
	t := h.t
	t.Helper()
	deadline := time.After(15 * time.Second)
	for !done() {
		tick := time.Second
		for _, x := range h.table.All() {
			if d := x.Deadline(); !d.IsZero() && time.Until(d) < tick {
				tick = max(time.Until(d), 0)
			}
		}
		select {
		case d := <-h.in:
			x, pkt, _, err := h.table.Route(d.local, d.remote, d.raw)
			if err != nil {
				t.Logf("route: %v", err)
				continue
			}
			if err := x.Handle(d.local, d.remote, pkt); err != nil {
				t.Logf("handle: %v", err)
			}
		case <-time.After(tick):
			for _, x := range h.table.All() {
				x.Tick()
			}
		case <-deadline:
			t.Fatalf("timed out: %s", what)
		}
	}
}

func (h *udpHost) established() *SA {
	for _, x := range h.table.All() {
		if x.State == StateEstablished {
			return x
		}
	}
	return nil
}

// interopConfig is this side's policy; SITESEC_IKE ("enc,auth,group") and
// SITESEC_ESP ("enc,auth,pfs-group") match run.sh's charon proposals.
func interopConfig(t *testing.T) *Config {
	ikeArgs, espArgs := []string{"aes-256-gcm", "sha-256", "group19"}, []string{"aes-128-gcm", "", "group19"}
	if v := os.Getenv("SITESEC_IKE"); v != "" {
		ikeArgs = strings.Split(v, ",")
	}
	if v := os.Getenv("SITESEC_ESP"); v != "" {
		espArgs = strings.Split(v, ",")
	}
	ike, err := transform.IKESuite(ikeArgs[0], ikeArgs[1], ikeArgs[2])
	if err != nil {
		t.Fatal(err)
	}
	esp, err := transform.ESPSuite(espArgs[0], espArgs[1], espArgs[2])
	if err != nil {
		t.Fatal(err)
	}
	return &Config{
		Name:          "interop",
		IKEProposals:  transform.Proposals([]transform.Suite{ike}, nil),
		ESPProposals:  transform.Proposals([]transform.Suite{esp}, nil),
		PFSGroup:      esp.DH,
		LocalID:       IPID(netip.MustParseAddr("127.0.0.2")),
		RemoteID:      MatchIDs(IPID(netip.MustParseAddr("127.0.0.1"))),
		Auth:          PSK("interop-s3cret"),
		LocalTS:       []message.Selector{PrefixSelector(netip.MustParsePrefix("10.0.0.0/16"))},
		RemoteTS:      []message.Selector{PrefixSelector(netip.MustParsePrefix("10.1.0.0/16"))},
		IKELifetime:   time.Hour,
		ChildLifetime: time.Hour,
		NATTraversal:  true,
		NATKeepalive:  20 * time.Second,
	}
}

// TestStrongSwanInitiator: this side initiates; IKE_SA_INIT, IKE_AUTH with a
// CHILD SA, a CHILD SA rekey with PFS, an IKE SA rekey, a CHILD SA on the
// new IKE SA, and a delete.
func TestStrongSwanInitiator(t *testing.T) {
	cfg := interopConfig(t)
	h := newUDPHost(t, cfg)
	sa, err := NewInitiator(cfg, netip.MustParseAddrPort("127.0.0.2:500"), netip.MustParseAddrPort("127.0.0.1:1500"), h.table.Options)
	if err != nil {
		t.Fatal(err)
	}
	h.table.Add(sa)
	if err := sa.Start(); err != nil {
		t.Fatal(err)
	}
	h.pump("IKE SA", func() bool { return sa.State == StateEstablished && len(sa.Children) == 1 || sa.State == StateDead })
	if sa.State != StateEstablished {
		t.Fatalf("IKE SA: %v", sa.Err)
	}
	old := sa.Children[0]
	if err := sa.RekeyChild(old); err != nil {
		t.Fatal(err)
	}
	h.pump("CHILD rekey", func() bool { return h.installs == 2 && len(sa.Children) == 1 && sa.Child(old.SPIIn) == nil })
	if sa.Children[0].Suite.DH != cfg.PFSGroup {
		t.Fatal("CHILD rekey without PFS")
	}
	if err := sa.Rekey(); err != nil {
		t.Fatal(err)
	}
	h.pump("IKE rekey", func() bool { return sa.State == StateDead })
	n := h.established()
	if n == nil || len(n.Children) != 1 {
		t.Fatal("no new IKE SA with the CHILD SA")
	}
	if err := n.CreateChild(); err != nil {
		t.Fatal(err)
	}
	h.pump("CHILD on rekeyed IKE SA", func() bool { return len(n.Children) == 2 })
	if err := n.Delete(); err != nil {
		t.Fatal(err)
	}
	h.pump("delete", func() bool { return n.State == StateDead })
	if len(h.installed) != 0 {
		t.Fatalf("%d CHILD SAs left", len(h.installed))
	}
}

// swanctl runs a swanctl command against the test's charon.
func swanctl(t *testing.T, args ...string) chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args = append(args, "--uri", "unix://"+os.Getenv("SITESEC_STRONGSWAN")+"/charon.vici")
		out, err := exec.CommandContext(ctx, "swanctl", args...).CombinedOutput()
		if err != nil {
			t.Logf("swanctl %v: %v\n%s", args, err, out)
		}
		done <- err
	}()
	return done
}

// TestStrongSwanResponder: charon initiates and drives the rekeys; this
// side answers: IKE_SA_INIT and IKE_AUTH (moving to 4500), CHILD SA rekey,
// IKE SA rekey, and charon's delete.
func TestStrongSwanResponder(t *testing.T) {
	cfg := interopConfig(t)
	h := newUDPHost(t, cfg)
	swanctl(t, "--initiate", "--ike", "kmd", "--child", "net", "--timeout", "15")
	h.pump("IKE SA", func() bool { sa := h.established(); return sa != nil && len(sa.Children) == 1 })
	sa := h.established()
	if sa.Initiator || sa.Local.Port() != 4500 || sa.Remote.Port() != 14500 {
		t.Fatalf("role %v, %v -> %v", sa.Initiator, sa.Local, sa.Remote)
	}
	old := sa.Children[0]
	swanctl(t, "--rekey", "--child", "net")
	h.pump("CHILD rekey", func() bool { return h.installs == 2 && len(sa.Children) == 1 && sa.Child(old.SPIIn) == nil })
	swanctl(t, "--rekey", "--ike", "kmd")
	h.pump("IKE rekey", func() bool { return sa.State == StateDead && h.established() != nil })
	n := h.established()
	if len(n.Children) != 1 || n.Initiator {
		t.Fatalf("new IKE SA: %d CHILD SAs", len(n.Children))
	}
	swanctl(t, "--terminate", "--ike", "kmd", "--timeout", "5")
	h.pump("delete", func() bool { return n.State == StateDead })
	if len(h.installed) != 0 {
		t.Fatalf("%d CHILD SAs left", len(h.installed))
	}
}

// TestStrongSwanCertificates: this side (127.0.0.3) authenticates with a
// certificate run.sh issued, charon with its own, both from one CA.
func TestStrongSwanCertificates(t *testing.T) {
	dir := os.Getenv("SITESEC_STRONGSWAN")
	if dir == "" {
		t.Fatal("SITESEC_STRONGSWAN unset: run through testdata/strongswan/run.sh, which starts charon")
	}
	readPEM := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM", name)
		}
		return blk.Bytes
	}
	caDER, certDER, keyDER := readPEM("swanctl/x509ca/ca.pem"), readPEM("kmd.pem"), readPEM("kmd-key.pem")
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	var key crypto.Signer
	keyType := "rsa"
	if k, err := x509.ParsePKCS1PrivateKey(keyDER); err == nil {
		key = k
	} else if k, err := x509.ParseECPrivateKey(keyDER); err == nil {
		key, keyType = k, map[int]string{256: "ecdsa-p256", 384: "ecdsa-p384", 521: "ecdsa-p521"}[k.Curve.Params().BitSize]
	} else {
		t.Fatalf("key: %v", err)
	}
	auth := &SignatureAuth{
		Local: func() ([][]byte, string, error) { return [][]byte{certDER}, keyType, nil },
		SignData: func(s Scheme, raw bool, data []byte) ([]byte, error) {
			h := map[Scheme]crypto.Hash{RSAPKCS1SHA1: crypto.SHA1, RSAPKCS1SHA256: crypto.SHA256, ECDSAP256SHA256: crypto.SHA256, ECDSAP384SHA384: crypto.SHA384, ECDSAP521SHA512: crypto.SHA512}[s]
			if raw {
				k := key.(*ecdsa.PrivateKey)
				n := (k.Curve.Params().BitSize + 7) / 8
				r, s2, err := ecdsa.Sign(rand.Reader, k, hashOf(h, data))
				return append(r.FillBytes(make([]byte, n)), s2.FillBytes(make([]byte, n))...), err
			}
			return key.Sign(rand.Reader, hashOf(h, data), h)
		},
		Validate: func(certs [][]byte, id *message.ID) (crypto.PublicKey, error) {
			c, err := x509.ParseCertificate(certs[0])
			if err != nil {
				return nil, err
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
				return nil, err
			}
			return c.PublicKey, nil
		},
		CAKeyHashes: func() ([]byte, error) {
			h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
			return h[:], nil
		},
	}
	cfg := interopConfig(t)
	cfg.Auth = auth
	cfg.LocalID = IPID(netip.MustParseAddr("127.0.0.3"))
	h := newUDPHostOn(t, cfg, "127.0.0.3")
	sa, err := NewInitiator(cfg, netip.MustParseAddrPort("127.0.0.3:500"), netip.MustParseAddrPort("127.0.0.1:1500"), h.table.Options)
	if err != nil {
		t.Fatal(err)
	}
	h.table.Add(sa)
	if err := sa.Start(); err != nil {
		t.Fatal(err)
	}
	h.pump("IKE SA", func() bool { return sa.State == StateEstablished && len(sa.Children) == 1 || sa.State == StateDead })
	if sa.State != StateEstablished {
		t.Fatalf("IKE SA: %v", sa.Err)
	}
	t.Logf("authenticated with %s certificates, peer %s, fragmentation %v", keyType, sa.PeerID, sa.fragment)
	if err := sa.Delete(); err != nil {
		t.Fatal(err)
	}
	h.pump("delete", func() bool { return sa.State == StateDead })
}
