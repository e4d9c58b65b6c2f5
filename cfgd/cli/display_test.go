package cli

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

var displayGolden = []struct {
	name  string
	reply *pb.OpReply
}{
	{"ike_sa_brief", &pb.OpReply{Body: &pb.OpReply_IkeSecurityAssociations{IkeSecurityAssociations: ikeSAsFixture(false)}}},
	{"ike_sa_detail", &pb.OpReply{Body: &pb.OpReply_IkeSecurityAssociations{IkeSecurityAssociations: ikeSAsFixture(true)}}},
	{"ike_statistics", &pb.OpReply{Body: &pb.OpReply_IkeStatistics{IkeStatistics: ikeStatisticsFixture()}}},
	{"ipsec_sa_brief", &pb.OpReply{Body: &pb.OpReply_IpsecSecurityAssociations{IpsecSecurityAssociations: ipsecSAsFixture("brief", false)}}},
	{"ipsec_sa_detail", &pb.OpReply{Body: &pb.OpReply_IpsecSecurityAssociations{IpsecSecurityAssociations: ipsecSAsFixture("detail", false)}}},
	{"ipsec_sa_extensive", &pb.OpReply{Body: &pb.OpReply_IpsecSecurityAssociations{IpsecSecurityAssociations: ipsecSAsFixture("extensive", true)}}},
	{"ipsec_statistics_detail", &pb.OpReply{Body: &pb.OpReply_IpsecStatistics{IpsecStatistics: ipsecStatisticsFixture(true)}}},
	{"service_sets_summary", &pb.OpReply{Body: &pb.OpReply_ServiceSetSummary{ServiceSetSummary: serviceSetSummaryFixture()}}},
}

// TestDisplayGolden compares `| display xml` and `| display json` of the
// IKE and IPsec commands with testdata/display_NAME.{xml,json}; `go test
// -run TestDisplayGolden -update` rewrites them.
func TestDisplayGolden(t *testing.T) {
	for _, c := range displayGolden {
		for _, f := range []struct {
			ext    string
			render func(*pb.OpReply) string
		}{
			{"xml", func(r *pb.OpReply) string { return renderXML(replyTree(r)) }},
			{"json", renderDisplayJSON},
		} {
			t.Run(c.name+"."+f.ext, func(t *testing.T) {
				got := f.render(c.reply) + "\n"
				path := filepath.Join("testdata", "display_"+c.name+"."+f.ext)
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
					t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s", path, got)
				}
			})
		}
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err.Error()
	}
	return out.String()
}

// The XML is well formed and has Junos's envelope; the JSON is Junos's
// shape: a list of objects per element, [{"data": v}] per leaf.
func TestDisplayShapes(t *testing.T) {
	r := &pb.OpReply{Body: &pb.OpReply_IkeSecurityAssociations{IkeSecurityAssociations: ikeSAsFixture(true)}}
	x := renderXML(replyTree(r))
	d := xml.NewDecoder(strings.NewReader(x))
	var names []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("xml: %v\n%s", err, x)
		}
		if se, ok := tok.(xml.StartElement); ok {
			names = append(names, se.Name.Local)
		}
	}
	if names[0] != "rpc-reply" || names[1] != "ike-security-associations-information" || names[len(names)-1] != "banner" {
		t.Errorf("elements %v", names)
	}
	if !strings.Contains(x, `junos:style="detail"`) || !strings.Contains(x, "<ike-sa-remote-address>192.0.2.2</ike-sa-remote-address>") {
		t.Errorf("xml:\n%s", x)
	}

	var doc map[string][]struct {
		Attributes map[string]string `json:"attributes"`
		Blocks     []struct {
			Remote []struct {
				Data string `json:"data"`
			} `json:"ike-sa-remote-address"`
			SAs []map[string]json.RawMessage `json:"ike-security-associations"`
		} `json:"ike-security-associations-block"`
	}
	j := renderDisplayJSON(r)
	if err := json.Unmarshal([]byte(j), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, j)
	}
	info := doc["ike-security-associations-information"]
	if len(info) != 1 || len(info[0].Blocks) != 2 || info[0].Blocks[0].Remote[0].Data != "192.0.2.2" ||
		info[0].Attributes["junos:style"] != "detail" || compact(info[0].Blocks[0].SAs[0]["ike-sa-state"]) != `[{"data":"matured"}]` {
		t.Errorf("json shape:\n%s", j)
	}
	// Characters XML reserves are escaped.
	e := newElem("a")
	e.add("b", `<x & "y">`)
	if got := renderXML(e); !strings.Contains(got, "<b>&lt;x &amp; &quot;y&quot;&gt;</b>") {
		t.Errorf("escaping: %s", got)
	}
	// A reply with no Junos counterpart still prints as XML.
	p := &pb.OpReply{Body: &pb.OpReply_Processes{Processes: &pb.ProcessList{Router: "r1", Processes: []*pb.ProcessStatus{{Name: "kmd", Pid: 7}}}}}
	if got := renderXML(replyTree(p)); !strings.Contains(got, "<name>kmd</name>") || !strings.Contains(got, "<system-process-information") {
		t.Errorf("generic xml:\n%s", got)
	}
	// Secrets never reach either output.
	for _, c := range displayGolden {
		if s := renderXML(replyTree(c.reply)) + renderDisplayJSON(c.reply); strings.Contains(strings.ToLower(s), "secret") {
			t.Errorf("%s mentions a secret", c.name)
		}
	}
}
