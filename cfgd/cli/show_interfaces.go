package cli

// Text of `show services ipsec-vpn interfaces`: how fwdd named the inside
// service interfaces in Linux. The layout follows `show interfaces terse`:
// one row per interface, further addresses on rows of their own under the
// Addresses column. No times are shown.

import (
	"fmt"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// renderInterfaceMap prints
//
//	Interface     Linux name     State  MTU   Service set  Addresses
//	ms-1/2/0.1    ms-1-2-0u1     up     1500  ss1          10.0.1.1/24
func renderInterfaceMap(m *pb.InterfaceMap, now time.Time) []string {
	head := []string{"Interface", "Linux name", "State", "MTU", "Service set", "Addresses"}
	widths := []int{12, 12, 5, 4, 11, 0}
	type row struct {
		cells []string
		more  []string
	}
	var rows []row
	for _, e := range m.GetEntries() {
		state := "down"
		if e.GetUp() {
			state = "up"
		}
		mtu := "-"
		if e.GetMtu() != 0 {
			mtu = fmt.Sprint(e.GetMtu())
		}
		addrs := e.GetAddresses()
		first := "-"
		if len(addrs) > 0 {
			first = addrs[0]
		}
		r := row{cells: []string{dash(e.GetJunosName()), dash(e.GetLinuxName()), state, mtu, dash(e.GetServiceSet()), first}}
		if len(addrs) > 1 {
			r.more = addrs[1:]
		}
		widen(widths, r.cells...)
		rows = append(rows, r)
	}
	out := []string{columns(widths, head...)}
	for _, r := range rows {
		out = append(out, columns(widths, r.cells...))
		for _, a := range r.more {
			out = append(out, columns(widths, "", "", "", "", "", a))
		}
	}
	return out
}
