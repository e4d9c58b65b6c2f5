package cli

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// showGolden is every renderer at every level, on realistic messages.
var showGolden = []struct {
	name   string
	render func(now time.Time) []string
}{
	{"ike_sa_brief", func(n time.Time) []string { return renderIKESAs(ikeSAsFixture(false), n) }},
	{"ike_sa_detail", func(n time.Time) []string { return renderIKESAs(ikeSAsFixture(true), n) }},
	{"ike_statistics", func(n time.Time) []string { return renderIKEStatistics(ikeStatisticsFixture(), n) }},
	{"ipsec_sa_brief", func(n time.Time) []string { return renderIPsecSAs(ipsecSAsFixture("brief", false), n) }},
	{"ipsec_sa_brief_hex", func(n time.Time) []string { return renderIPsecSAs(ipsecSAsFixture("brief", true), n) }},
	{"ipsec_sa_detail", func(n time.Time) []string { return renderIPsecSAs(ipsecSAsFixture("detail", false), n) }},
	{"ipsec_sa_extensive", func(n time.Time) []string { return renderIPsecSAs(ipsecSAsFixture("extensive", true), n) }},
	{"ipsec_statistics_brief", func(n time.Time) []string { return renderIPsecStatistics(ipsecStatisticsFixture(false), n) }},
	{"ipsec_statistics_detail", func(n time.Time) []string { return renderIPsecStatistics(ipsecStatisticsFixture(true), n) }},
	{"pki_ca_certificate_brief", func(n time.Time) []string {
		return renderPKICertificates(pkiCertificatesFixture("ca-certificate", false), n)
	}},
	{"pki_ca_certificate_detail", func(n time.Time) []string {
		return renderPKICertificates(pkiCertificatesFixture("ca-certificate", true), n)
	}},
	{"pki_local_certificate_brief", func(n time.Time) []string {
		return renderPKICertificates(pkiCertificatesFixture("local-certificate", false), n)
	}},
	{"pki_local_certificate_detail", func(n time.Time) []string {
		return renderPKICertificates(pkiCertificatesFixture("local-certificate", true), n)
	}},
	{"services_certificates", func(n time.Time) []string { return renderPKICertificates(servicesCertificatesFixture(), n) }},
	{"pki_certificate_request", func(n time.Time) []string { return renderPKICertificateRequests(pkiRequestsFixture(), n) }},
	{"pki_crl", func(n time.Time) []string { return renderPKICRLs(pkiCRLsFixture(), n) }},
	{"interface_map", func(n time.Time) []string { return renderInterfaceMap(interfaceMapFixture(), n) }},
	{"service_sets_summary", func(time.Time) []string { return renderServiceSetSummary(serviceSetSummaryFixture()) }},
}

// TestShowGolden compares every renderer with testdata/show_NAME.golden;
// `go test -run TestShowGolden -update` rewrites them.
func TestShowGolden(t *testing.T) {
	for _, c := range showGolden {
		t.Run(c.name, func(t *testing.T) {
			lines := c.render(showNow)
			if len(lines) == 0 {
				t.Fatal("no output")
			}
			for i, l := range lines {
				if strings.TrimRight(l, " \t") != l {
					t.Errorf("line %d has trailing blanks: %q", i+1, l)
				}
				if strings.Contains(l, "%!") || strings.Contains(l, "<nil>") {
					t.Errorf("line %d has a formatting error: %q", i+1, l)
				}
			}
			got := strings.Join(lines, "\n") + "\n"
			path := filepath.Join("testdata", "show_"+c.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// TestRenderTextCoversEveryBody walks OpReply's body oneof: every member
// must have a fixture here and a text renderer, so a body added to the
// proto can never silently fall back to JSON in text output.
func TestRenderTextCoversEveryBody(t *testing.T) {
	od := (&pb.OpReply{}).ProtoReflect().Descriptor().Oneofs().ByName("body")
	if od == nil {
		t.Fatal("OpReply has no body oneof")
	}
	fields := od.Fields()
	if fields.Len() < 11 {
		t.Fatalf("body has %d members, expected at least 11", fields.Len())
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		t.Run(string(fd.Name()), func(t *testing.T) {
			fixture, ok := bodyFixtures[string(fd.Name())]
			if !ok {
				t.Fatalf("no fixture for OpReply.%s: add one to bodyFixtures and a case to renderText", fd.Name())
			}
			for _, body := range []proto.Message{fixture(), fixture().ProtoReflect().Type().New().Interface()} {
				if body.ProtoReflect().Descriptor() != fd.Message() {
					t.Fatalf("fixture is %s, field wants %s", body.ProtoReflect().Descriptor().FullName(), fd.Message().FullName())
				}
				r := &pb.OpReply{}
				r.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(body.ProtoReflect()))
				got := renderText(r)
				fallback := strings.Split(strings.TrimSpace(renderJSON(r)), "\n")
				if reflect.DeepEqual(got, fallback) {
					t.Errorf("OpReply.%s falls back to JSON in text output: add a renderer to renderText", fd.Name())
				}
				if len(got) > 0 && strings.HasPrefix(strings.TrimSpace(got[0]), "{\"") {
					t.Errorf("OpReply.%s text output looks like JSON: %q", fd.Name(), got[0])
				}
			}
		})
	}
}

// TestShowEmpty: an empty reply prints nothing or a bare header, never a
// stray block.
func TestShowEmpty(t *testing.T) {
	cases := []struct {
		name string
		got  []string
		want []string
	}{
		{"ike brief", renderIKESAs(&pb.IKESecurityAssociations{}, showNow), nil},
		{"ike detail", renderIKESAs(&pb.IKESecurityAssociations{Detail: true}, showNow), nil},
		{"ike statistics", renderIKEStatistics(&pb.IKEStatistics{}, showNow), nil},
		{"ipsec sa", renderIPsecSAs(&pb.IPsecSecurityAssociations{}, showNow), nil},
		{"ipsec sa set without tunnels", renderIPsecSAs(&pb.IPsecSecurityAssociations{ServiceSets: []*pb.ServiceSetSAs{{ServiceSet: "ss1"}}}, showNow),
			[]string{"Service set: ss1, IKE Routing-instance: default"}},
		{"ipsec statistics", renderIPsecStatistics(&pb.IPsecStatistics{}, showNow), nil},
		{"certificates", renderPKICertificates(&pb.PKICertificates{}, showNow), nil},
		{"requests", renderPKICertificateRequests(&pb.PKICertificateRequests{}, showNow), nil},
		{"crls", renderPKICRLs(&pb.PKICRLs{}, showNow), nil},
		{"interfaces", renderInterfaceMap(&pb.InterfaceMap{}, showNow),
			[]string{"Interface     Linux name    State  MTU   Service set  Addresses"}},
	}
	for _, c := range cases {
		if !reflect.DeepEqual([]string(c.got), c.want) {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestShowNilFields: a reply whose nested messages are missing (a daemon
// that sent a block without counters) renders zeros, not a crash.
func TestShowNilFields(t *testing.T) {
	out := renderIPsecStatistics(&pb.IPsecStatistics{Detail: true, Blocks: []*pb.IPsecStatistics_Block{{}}}, showNow)
	if !strings.Contains(strings.Join(out, "\n"), "Encrypted bytes:                       0") {
		t.Errorf("nil counters not shown as 0:\n%s", strings.Join(out, "\n"))
	}
	out = renderIKESAs(&pb.IKESecurityAssociations{Detail: true, Sas: []*pb.IKESecurityAssociation{{Phase2: []*pb.Phase2Negotiation{nil}}}}, showNow)
	if len(out) == 0 || out[0] != "IKE peer -" {
		t.Errorf("empty SA: %q", out)
	}
	renderIPsecSAs(&pb.IPsecSecurityAssociations{Level: "extensive", ServiceSets: []*pb.ServiceSetSAs{nil, {Tunnels: []*pb.IPsecTunnel{nil, {Sas: []*pb.IPsecSAInfo{nil}}}}}}, showNow)
	renderPKICertificates(&pb.PKICertificates{Detail: true, Certificates: []*pb.PKICertificate{nil}}, showNow)
	renderPKICRLs(&pb.PKICRLs{Crls: []*pb.PKICRLs_CRL{nil}}, showNow)
	renderInterfaceMap(&pb.InterfaceMap{Entries: []*pb.InterfaceMap_Entry{nil}}, showNow)
	renderIKEStatistics(&pb.IKEStatistics{Peers: []*pb.IKEStatistics_Peer{nil}}, showNow)
}

// TestShowNoSecrets: the PEM and DER travel for `| display json`; the text
// shows fingerprints only.
func TestShowNoSecrets(t *testing.T) {
	text := strings.Join(append(renderPKICertificateRequests(pkiRequestsFixture(), showNow),
		renderPKICertificates(pkiCertificatesFixture("ca-certificate", true), showNow)...), "\n")
	for _, bad := range []string{"BEGIN CERTIFICATE", "MIIB", "\x30\x82"} {
		if strings.Contains(text, bad) {
			t.Errorf("text output holds %q", bad)
		}
	}
}

func TestIKEStatisticsUnknownCounter(t *testing.T) {
	out := renderIKEStatistics(&pb.IKEStatistics{Peers: []*pb.IKEStatistics_Peer{{RemoteAddress: "192.0.2.9",
		Counters: map[string]uint64{"b-new": 2, "a-new": 1, "delete-payloads-sent": 5}}}}, showNow)
	text := strings.Join(out, "\n")
	ia, ib, id := strings.Index(text, "A new:"), strings.Index(text, "B new:"), strings.Index(text, "Delete payloads sent:")
	if ia < 0 || ib < 0 || id < 0 {
		t.Fatalf("counters missing:\n%s", text)
	}
	if !(id < ia && ia < ib) {
		t.Errorf("unknown counters must follow the known ones in key order:\n%s", text)
	}
	if !strings.Contains(text, "Delete payloads sent:") || !strings.HasSuffix(strings.TrimSpace(out[2]), " 5") {
		t.Errorf("known counter value lost: %q", out[2])
	}
}

func TestParseDN(t *testing.T) {
	cases := []struct {
		dn        string
		words, cn string
	}{
		{"C=US, O=Example, CN=vpn1", "Organization: Example, Country: US, Common name: vpn1", "vpn1"},
		{"CN=vpn1, OU=net, OU=sec, O=Example", "Organization: Example, Organizational unit: net, Organizational unit: sec, Common name: vpn1", "vpn1"},
		{"O=Old, Inc., C=DE", "Organization: Old, Inc., Country: DE", "O=Old, Inc., C=DE"},
		{"cn=lower", "Common name: lower", "lower"},
		{"UID=42, CN=x", "Common name: x, UID: 42", "x"},
		{"", "-", "-"},
		{"garbage", "garbage", "garbage"},
		{"=v, CN=a", "Common name: a, =v", "a"},
	}
	for _, c := range cases {
		if got := dnWords(c.dn); got != c.words {
			t.Errorf("dnWords(%q) = %q, want %q", c.dn, got, c.words)
		}
		if got := commonName(c.dn); got != c.cn {
			t.Errorf("commonName(%q) = %q, want %q", c.dn, got, c.cn)
		}
	}
}

func TestAlternateSubject(t *testing.T) {
	cases := []struct {
		alt  []string
		want string
	}{
		{nil, "email empty, fqdn empty, ip empty"},
		{[]string{"fqdn:a.example", "ipv4:192.0.2.1"}, "email empty, a.example, 192.0.2.1"},
		{[]string{"email:x@y", "ipv6:2001:db8::1", "uri:https://u.example/a"}, `"x@y", fqdn empty, 2001:db8::1, uri:https://u.example/a`},
		{[]string{"odd"}, "email empty, fqdn empty, ip empty, odd"},
	}
	for _, c := range cases {
		if got := alternateSubject(c.alt); got != c.want {
			t.Errorf("alternateSubject(%q) = %q, want %q", c.alt, got, c.want)
		}
	}
}

func TestShowFormatHelpers(t *testing.T) {
	cases := []struct{ got, want string }{
		{hostPort("192.0.2.1", 500), "192.0.2.1:500"},
		{hostPort("2001:db8::1", 4500), "[2001:db8::1]:4500"},
		{hostPort("192.0.2.1", 0), "192.0.2.1"},
		{hostPort("", 500), "-"},
		{expires(2214), "Expires in 2214 seconds"},
		{expires(0), "Expires in 0 seconds"},
		{expires(-1), "Expired"},
		{junosDate(0), "-"},
		{junosDate(time.Date(2026, 11, 27, 21, 15, 59, 0, time.UTC).Unix()), "11-27-2026 21:15 UTC"},
		{capitalized("matured"), "Matured"},
		{capitalized(""), "-"},
		{columns([]int{3, 3}, "abcdef", "x"), "abcdef x"},
		{columns([]int{3, 3, 0}, "a", "", ""), "a"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

// FuzzDN: DNs come from certificates that peers and CAs made; printing
// one never panics and never drops an attribute value.
func FuzzDN(f *testing.F) {
	for _, s := range []string{"C=US, O=Example, CN=vpn1", "O=Old, Inc., C=DE", "", "=", ", , =,", "CN=\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		w := dnWords(dn)
		_ = commonName(dn)
		for _, a := range parseDN(dn) {
			if a.value != "" && !strings.Contains(w, a.value) {
				t.Fatalf("dnWords(%q) = %q lost %q", dn, w, a.value)
			}
		}
	})
}

// BenchmarkRenderIPsecSAsBrief: a gateway with 1000 tunnels.
func BenchmarkRenderIPsecSAsBrief(b *testing.B) {
	m := ipsecSAsFixture("brief", false)
	t0 := m.ServiceSets[0].Tunnels[0]
	for i := 0; i < 1000; i++ {
		m.ServiceSets[0].Tunnels = append(m.ServiceSets[0].Tunnels, t0)
	}
	b.ReportAllocs()
	for b.Loop() {
		renderIPsecSAs(m, showNow)
	}
}

// TestServiceSetSummaryColumns holds the text to the columns of Juniper's
// published output of show services service-sets summary: the MX-SPC3 row
// "vms-1/0/0          1           6967242496 (44.19%) 18237778944 (83.61%)
// 7214816 ( 0.82%)        76.36 %" without its Session bytes column,
// which an MS-MPC does not print, and the header words over their columns.
func TestServiceSetSummaryColumns(t *testing.T) {
	m := &pb.ServiceSetSummary{Entries: []*pb.ServiceSetSummary_Entry{{InterfaceName: "vms-1/0/0", ServiceSetsConfigured: 1,
		BytesUsed: 6967242496, PercentBytesUsed: 44.19, PolicyBytesUsed: 7214816, PercentPolicyBytesUsed: 0.82, CpuUtilization: 76.36}}}
	got := renderServiceSetSummary(m)
	want := "vms-1/0/0          1           6967242496 (44.19%)       7214816 ( 0.82%)        76.36 %"
	if len(got) != 3 || got[2] != want {
		t.Fatalf("got\n%s\nwant row\n%s", strings.Join(got, "\n"), want)
	}
	// The CPU column ends under "utilization", as in Junos's output.
	if end := strings.Index(got[1], "utilization") + len("utilization"); end != len(got[2]) {
		t.Errorf("utilization ends at %d, the row at %d", end, len(got[2]))
	}
	if strings.Index(got[0], "CPU") != strings.Index(got[1], "utilization") {
		t.Errorf("CPU is not over utilization:\n%s\n%s", got[0], got[1])
	}
}
