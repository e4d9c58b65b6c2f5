package ikesa

import (
	"testing"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

// TestAHChild: a CHILD SA with protocol AH (RFC 7296 section 3.3.1,
// protocol ID 2): the proposal has an integrity transform and no
// encryption transform; the keys are integrity keys only, crossed; a
// rekey with PFS and a delete name protocol AH.
func TestAHChild(t *testing.T) {
	cfg := testConfig("k")
	ah, err := transform.AHSuite("hmac-sha1-96", "group14")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ESPProposals = transform.Proposals([]transform.Suite{ah}, nil)
	cfg.PFSGroup = 14
	for _, tr := range cfg.ESPProposals[0].Transforms {
		if tr.Type == message.TransformENCR {
			t.Fatal("AH proposal with an encryption transform")
		}
	}
	if cfg.ESPProposals[0].Protocol != message.ProtocolAH {
		t.Fatalf("protocol %d", cfg.ESPProposals[0].Protocol)
	}
	w := newWorld(t, 31, cfg, mirror(cfg))
	sa := w.initiate(cfg)
	w.run()
	w.checkChildren(t, 1)
	c := sa.Children[0]
	if c.Suite.Protocol != message.ProtocolAH || c.Suite.Encr != 0 || c.Suite.IntegrityName() != "hmac-sha1-96" ||
		len(c.EncrIn) != 0 || len(c.EncrOut) != 0 || len(c.IntegIn) != 20 || len(c.IntegOut) != 20 {
		t.Fatalf("AH CHILD SA %+v keys %d/%d/%d/%d", c.Suite, len(c.EncrIn), len(c.EncrOut), len(c.IntegIn), len(c.IntegOut))
	}
	if err := sa.RekeyChild(c); err != nil {
		t.Fatal(err)
	}
	w.run()
	w.checkChildren(t, 1)
	if n := sa.Children[0]; n.Suite.Protocol != message.ProtocolAH || n.Suite.DH != 14 || n.SPIIn == c.SPIIn {
		t.Fatalf("rekeyed %+v", n.Suite)
	}
	if err := sa.DeleteChild(sa.Children[0]); err != nil {
		t.Fatal(err)
	}
	w.run()
	w.checkChildren(t, 0)
}

// TestAHNotESP: a responder configured for ESP only does not accept an
// AH proposal with the same integrity algorithm.
func TestAHNotESP(t *testing.T) {
	l := testConfig("k")
	ah, _ := transform.AHSuite("hmac-sha-256-128", "")
	l.ESPProposals = transform.Proposals([]transform.Suite{ah}, nil)
	r := mirror(testConfig("k"))
	w := newWorld(t, 32, l, r)
	w.initiate(l)
	w.run()
	if len(w.l.installed) != 0 || len(w.r.installed) != 0 {
		t.Fatalf("installed %d/%d", len(w.l.installed), len(w.r.installed))
	}
}
