package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
)

// renderJSON prints the reply body as JSON under a root named like the
// Junos XML root of the command ("ike-security-associations-information").
// Secret fields are redacted: nothing the cli prints carries a key.
func renderJSON(r *pb.OpReply) string {
	var root string
	var body proto.Message
	m := r.ProtoReflect()
	if od := m.Descriptor().Oneofs().ByName("body"); od != nil {
		if fd := m.WhichOneof(od); fd != nil {
			root = jsonRoot(fd)
			body = m.Get(fd).Message().Interface()
		}
	}
	if body == nil {
		// No structured body: the lines are the output.
		body = &pb.OpReply{Lines: r.Lines}
		root = "output"
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(redact.Clone(body))
	if err != nil {
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	// protojson's own indentation varies on purpose; encoding/json's does
	// not, so scripts and golden files can rely on it.
	var out bytes.Buffer
	doc := append(append([]byte(`{"`+root+`":`), b...), '}')
	if err := json.Indent(&out, doc, "", "    "); err != nil {
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	return out.String()
}

var jsonRoots = map[string]string{
	"processes":                   "system-process-information",
	"ike_security_associations":   "ike-security-associations-information",
	"ike_statistics":              "ike-security-associations-statistics",
	"ipsec_security_associations": "services-security-associations-information",
	"ipsec_statistics":            "ipsec-total-statistics-information",
	"pki_certificates":            "pki-certificate-information",
	"pki_certificate_requests":    "pki-certificate-request-information",
	"pki_crls":                    "pki-crl-information",
	"commit_history":              "commit-information",
	"interface_map":               "interface-information",
	"config_text":                 "configuration",
	"service_set_summary":         "service-set-summary-information",
}

func jsonRoot(fd protoreflect.FieldDescriptor) string {
	if r, ok := jsonRoots[string(fd.Name())]; ok {
		return r
	}
	return strings.ReplaceAll(string(fd.Name()), "_", "-")
}

// renderText turns a reply into Junos-style lines.
func renderText(r *pb.OpReply) []string {
	if len(r.Lines) > 0 {
		return r.Lines
	}
	switch b := r.Body.(type) {
	case *pb.OpReply_Processes:
		return renderProcesses(b.Processes, time.Now())
	case *pb.OpReply_ConfigText:
		return strings.Split(strings.TrimRight(b.ConfigText.Text, "\n"), "\n")
	case *pb.OpReply_CommitHistory:
		return renderCommits(b.CommitHistory)
	case *pb.OpReply_IkeSecurityAssociations:
		return renderIKESAs(b.IkeSecurityAssociations, time.Now())
	case *pb.OpReply_IkeStatistics:
		return renderIKEStatistics(b.IkeStatistics, time.Now())
	case *pb.OpReply_IpsecSecurityAssociations:
		return renderIPsecSAs(b.IpsecSecurityAssociations, time.Now())
	case *pb.OpReply_IpsecStatistics:
		return renderIPsecStatistics(b.IpsecStatistics, time.Now())
	case *pb.OpReply_PkiCertificates:
		return renderPKICertificates(b.PkiCertificates, time.Now())
	case *pb.OpReply_PkiCertificateRequests:
		return renderPKICertificateRequests(b.PkiCertificateRequests, time.Now())
	case *pb.OpReply_PkiCrls:
		return renderPKICRLs(b.PkiCrls, time.Now())
	case *pb.OpReply_InterfaceMap:
		return renderInterfaceMap(b.InterfaceMap, time.Now())
	case *pb.OpReply_ServiceSetSummary:
		return renderServiceSetSummary(b.ServiceSetSummary)
	case nil:
		return nil
	}
	// A body with no text renderer yet: show its fields rather than
	// nothing.
	return strings.Split(strings.TrimSpace(renderJSON(r)), "\n")
}

func renderProcesses(pl *pb.ProcessList, now time.Time) []string {
	bus := pl.Bus
	if pl.BusServerVersion != "" {
		bus += " (nats-server " + pl.BusServerVersion + ")"
	}
	out := []string{
		fmt.Sprintf("Router: %s, bus: %s", pl.Router, bus),
		fmt.Sprintf("%-9s %-7s %-10s %-12s %-8s %-9s %-13s %s", "Name", "PID", "State", "Uptime", "Restarts", "Revision", "Bus", "Last exit"),
	}
	for _, p := range pl.Processes {
		pid, up := "-", "-"
		if p.Pid != 0 {
			pid = fmt.Sprint(p.Pid)
			up = uptime(time.Duration(p.UptimeSeconds) * time.Second)
		}
		last := p.LastExitReason
		if last == "" {
			last = "-"
		} else if p.LastExitAt != nil {
			last += fmt.Sprintf(" (%s ago)", uptime(now.Sub(p.LastExitAt.AsTime()).Truncate(time.Second)))
		}
		bs := p.BusStatus
		if bs == "" {
			bs = "-"
		}
		out = append(out, fmt.Sprintf("%-9s %-7s %-10s %-12s %-8d %-9d %-13s %s", p.Name, pid, stateWord(p.State), up, p.Restarts, p.ConfigRevision, bs, last))
	}
	return out
}

func stateWord(s pb.DaemonState) string {
	w := strings.TrimPrefix(s.String(), "DAEMON_STATE_")
	return strings.ToLower(w)
}

// uptime prints a duration as Junos does: "1d 02:03:04" or "02:03:04".
func uptime(d time.Duration) string {
	s := int64(d.Seconds())
	days, s := s/86400, s%86400
	h, m, sec := s/3600, (s%3600)/60, s%60
	if days > 0 {
		return fmt.Sprintf("%dd %02d:%02d:%02d", days, h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
}

func renderCommits(h *pb.CommitHistory) []string {
	var out []string
	for _, e := range h.Entries {
		t := time.Unix(e.UnixTime, 0).UTC().Format("2006-01-02 15:04:05 MST")
		line := fmt.Sprintf("%d   %s by %s via %s", e.Index, t, e.User, e.Client)
		out = append(out, line)
		if e.Comment != "" {
			out = append(out, "    "+e.Comment)
		}
	}
	return out
}

// renderConfigErrors prints commit and parse errors the way Junos does.
func renderConfigErrors(errs []*pb.ConfigError) []string {
	var out []string
	for _, e := range errs {
		if e.Path != "" {
			out = append(out, e.Path)
		}
		if e.Statement != "" {
			out = append(out, "  '"+e.Statement+"'")
		}
		where := ""
		if e.File != "" && e.Line > 0 {
			where = fmt.Sprintf(" (%s line %d)", e.File, e.Line)
		} else if e.Line > 0 {
			where = fmt.Sprintf(" (line %d)", e.Line)
		}
		out = append(out, "    "+e.Message+where)
	}
	return out
}
