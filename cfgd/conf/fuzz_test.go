package conf

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary text to both parsers. Neither may panic, and
// whatever parses must render to text that parses back to the same tree.
func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/seed.conf")
	f.Add(string(seed))
	f.Add("set services service-set s ipsec-vpn-options local-gateway 1.2.3.4 routing-instance r\n")
	f.Add("system { host-name \"a b\"; /* c */ }")
	f.Add("interfaces { ge-0/0/0 { unit 0 { family inet { address 10.0.0.1/24; } } } }")
	f.Add("services { ipsec-vpn { ike { policy p { proposals [ a b ]; } } } }")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse("fuzz", text)
		if err == nil {
			again, err := Parse("again", cfg.Render())
			if err != nil {
				t.Fatalf("rendered text does not parse: %v\n%s", err, cfg.Render())
			}
			if !Equal(cfg, again) {
				t.Fatalf("round trip differs:\n%s\n---\n%s", cfg.Render(), again.Render())
			}
			if _, err := ToPB(cfg); err != nil {
				t.Fatalf("ToPB: %v", err)
			}
		}
		_ = ParseSet(New(), "fuzz", text)
	})
}

func BenchmarkParseSeed(b *testing.B) {
	text, _ := os.ReadFile("testdata/seed.conf")
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := Parse("seed", string(text)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderSeed(b *testing.B) {
	cfg, _ := load(b, "seed.conf")
	for b.Loop() {
		_ = cfg.Render()
	}
}

func BenchmarkToPBSeed(b *testing.B) {
	cfg, _ := load(b, "seed.conf")
	for b.Loop() {
		if _, err := ToPB(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
