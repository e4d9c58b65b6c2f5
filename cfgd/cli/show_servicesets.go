package cli

import (
	"fmt"

	"github.com/sitesec/sitesec/proto/pb"
)

// renderServiceSetSummary prints `show services service-sets summary` as
// Junos does on an MS-MPC (the columns of Juniper's published output; the
// Session bytes column of the MX-SPC3's vms- interfaces is not there):
//
//	             Service sets                                                    CPU
//	Interface    configured             Bytes used        Policy bytes used      utilization
//	ms-1/2/0            1             12345678 ( 0.30%)          2048 ( 0.00%)         0.20 %
func renderServiceSetSummary(m *pb.ServiceSetSummary) []string {
	out := []string{
		"             Service sets                                                    CPU",
		"Interface    configured             Bytes used        Policy bytes used      utilization",
	}
	for _, e := range m.GetEntries() {
		out = append(out, fmt.Sprintf("%-12s %7d %20d (%5.2f%%) %13d (%5.2f%%) %12.2f %%",
			e.GetInterfaceName(), e.GetServiceSetsConfigured(), e.GetBytesUsed(), e.GetPercentBytesUsed(),
			e.GetPolicyBytesUsed(), e.GetPercentPolicyBytesUsed(), e.GetCpuUtilization()))
	}
	return out
}

// serviceSetSummaryTree is Junos's service-set-summary-information: one
// service-set-summary-information-entry per interface with its
// service-set-service-type-entry (element names of Junos's published XML
// for this command, which has no xmlns of its own; the CPU element
// carries the " %" as Junos's does).
func serviceSetSummaryTree(m *pb.ServiceSetSummary) *elem {
	root := newElem("service-set-summary-information", style("summary"))
	for _, e := range m.GetEntries() {
		en := root.sub("service-set-summary-information-entry")
		en.add("interface-name", e.GetInterfaceName())
		t := en.sub("service-set-service-type-entry")
		t.add("service-sets-configured", e.GetServiceSetsConfigured())
		t.add("service-set-bytes-used", e.GetBytesUsed())
		t.add("service-set-percent-bytes-used", fmt.Sprintf("%.2f", e.GetPercentBytesUsed()))
		t.add("service-set-policy-bytes-used", e.GetPolicyBytesUsed())
		t.add("service-set-percent-policy-bytes-used", fmt.Sprintf("%.2f", e.GetPercentPolicyBytesUsed()))
		t.add("service-set-cpu-utilization", fmt.Sprintf("%.2f %%", e.GetCpuUtilization()))
	}
	return root
}
