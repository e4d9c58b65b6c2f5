package plane

import (
	"net/netip"
	"testing"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"google.golang.org/protobuf/proto"
)

// twoTerms is dynConfig with a second term t2 (10.0.1.0/24 -> 10.0.3.0/24)
// in the same rule: another tunnel of the same set.
func twoTerms() *pb.Config {
	c := dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	t2 := proto.Clone(c.IpsecVpn.Rules[0].Terms[0]).(*pb.Term)
	t2.Name = "t2"
	t2.From.DestinationAddress = []string{"10.0.3.0/24"}
	c.IpsecVpn.Rules[0].Terms = append(c.IpsecVpn.Rules[0].Terms, t2)
	return c
}

// TestCommitChangesInstalledSAOptions: fwdd owns the data-plane options
// (issue 11); a commit that changes a tunnel's takes effect on its
// installed SAs at once, with no rekey (the same SAs, SPIs and sequence
// numbers), and the SAs of the other tunnel keep theirs untouched.
func TestCommitChangesInstalledSAOptions(t *testing.T) {
	a, b := pair(t, twoTerms(), dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	key := make([]byte, 20)
	t1 := dynamicSAs("aes-128-gcm", "", key, nil, "192.0.2.1", "192.0.2.2", 0x510, 0x520, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	t2 := dynamicSAs("aes-128-gcm", "", key, nil, "192.0.2.1", "192.0.2.2", 0x530, 0x540, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	ts := func(a, b string) []*pb.TrafficSelector {
		return []*pb.TrafficSelector{{StartAddress: netip.MustParseAddr(a).AsSlice(), EndAddress: netip.MustParseAddr(b).AsSlice()}}
	}
	for _, s := range t2 {
		s.Term = "t2"
		s.LocalSelectors, s.RemoteSelectors = ts("10.0.1.0", "10.0.1.255"), ts("10.0.3.0", "10.0.3.255")
	}
	if err := a.p.DB.Install(append(t1, t2...), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.p.DB.Install(dynamicSAs("aes-128-gcm", "", key, nil, "192.0.2.2", "192.0.2.1", 0x520, 0x510, pb.Encapsulation_ENCAPSULATION_ESP, 0), 0); err != nil {
		t.Fatal(err)
	}
	before := map[uint32]*sad.SA{}
	opts := map[uint32]*sad.DataOptions{}
	for _, sa := range a.p.DB.All() {
		before[sa.Config.GetSpi()] = sa
		opts[sa.Config.GetSpi()] = sa.Options()
	}
	a.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound)
	if o := lastOuter(t, a); o.DF || o.TTL != 64 {
		t.Fatalf("before the commit: outer DF %v TTL %d", o.DF, o.TTL)
	}

	// The commit: t1 sets the outer DF bit, an outer TTL of 33 and a
	// tunnel MTU of 1300; t2 is as it was.
	c := twoTerms()
	then := c.IpsecVpn.Rules[0].Terms[0].Then
	then.DontFragment = pb.DFBit_DF_BIT_SET
	then.Ttl = u32(33)
	then.TunnelMtu = u32(1300)
	if err := a.p.Configure(c); err != nil {
		t.Fatal(err)
	}
	for _, sa := range a.p.DB.All() {
		spi := sa.Config.GetSpi()
		if before[spi] != sa {
			t.Fatalf("SA %#x was replaced", spi)
		}
		o := sa.Options()
		switch sa.Config.GetTerm() {
		case "t1":
			if o.DF != pb.DFBit_DF_BIT_SET || o.TTL != 33 || o.TunnelMTU != 1300 {
				t.Fatalf("t1 SA %#x options %+v", spi, *o)
			}
		case "t2":
			if o != opts[spi] {
				t.Fatalf("t2 SA %#x options touched: %+v", spi, *o)
			}
		}
	}
	if len(a.p.DB.All()) != 4 {
		t.Fatalf("%d SAs", len(a.p.DB.All()))
	}
	a.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound) // same keys: the peer still decrypts
	if o := lastOuter(t, a); !o.DF || o.TTL != 33 {
		t.Fatalf("after the commit: outer DF %v TTL %d", o.DF, o.TTL)
	}
	if s := before[0x520].Sequence(); s != 2 {
		t.Fatalf("outbound sequence %d: the SA was not kept", s)
	}
	// The show command tells the new options.
	for _, ss := range a.p.SecurityAssociations("detail", false, "").GetServiceSets() {
		for _, tn := range ss.GetTunnels() {
			if tn.GetTerm() == "t1" && tn.GetTunnelMtu() != 1300 {
				t.Fatalf("show: t1 tunnel MTU %d", tn.GetTunnelMtu())
			}
		}
	}
}

// TestCommitChangesManualSAOptions: a manual SA whose term's options
// change keeps running (same SA, sequence numbers and replay window) with
// the new options.
func TestCommitChangesManualSAOptions(t *testing.T) {
	a, b := pair(t,
		manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
		manualConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	a.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound)
	before := a.p.DB.All()
	c := manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	c.IpsecVpn.Rules[0].Terms[0].Then.DontFragment = pb.DFBit_DF_BIT_SET
	if err := a.p.Configure(c); err != nil {
		t.Fatal(err)
	}
	after := a.p.DB.All()
	if len(after) != len(before) {
		t.Fatalf("%d SAs, were %d", len(after), len(before))
	}
	for i := range after {
		if after[i] != before[i] {
			t.Fatalf("manual SA %#x was reinstalled", after[i].Config.GetSpi())
		}
		if after[i].Options().DF != pb.DFBit_DF_BIT_SET {
			t.Fatalf("manual SA %#x DF %v", after[i].Config.GetSpi(), after[i].Options().DF)
		}
	}
	a.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound)
	if o := lastOuter(t, a); !o.DF {
		t.Fatal("outer DF not set after the commit")
	}
}
