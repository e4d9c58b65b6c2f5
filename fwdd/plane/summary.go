package plane

import (
	"bufio"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// ServiceSetSummary builds `show services service-sets summary [interface
// I]`: one entry per service interface (the PIC part of a set's inside
// interface, ms-1/2/0) with its service sets. fwdd is one process for
// every service interface, so bytes used is its heap in use on each entry
// and CPU utilization its CPU time since the previous query as a
// percentage of one core; policy bytes are the sizes of the plans fwdd
// compiled the interface's sets from. Percentages are of the host's
// memory (0 when /proc/meminfo cannot be read).
func (p *Plane) ServiceSetSummary(only string) *pb.ServiceSetSummary {
	by := map[string]*pb.ServiceSetSummary_Entry{}
	out := &pb.ServiceSetSummary{}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	total := memTotal()
	pct := func(n uint64) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) * 100 / float64(total)
	}
	cpu := p.cpu.sample(p.Now())
	for _, s := range p.SPD().Sets {
		pic := strings.SplitN(s.Inside, ".", 2)[0]
		if pic == "" || (only != "" && only != pic && only != s.Inside) {
			continue
		}
		e := by[pic]
		if e == nil {
			e = &pb.ServiceSetSummary_Entry{InterfaceName: pic, BytesUsed: ms.HeapInuse, PercentBytesUsed: pct(ms.HeapInuse), CpuUtilization: cpu}
			by[pic] = e
			out.Entries = append(out.Entries, e)
		}
		e.ServiceSetsConfigured++
		e.ServiceSets = append(e.ServiceSets, s.Name)
		e.PolicyBytesUsed += uint64(s.PlanBytes)
	}
	for _, e := range out.Entries {
		e.PercentPolicyBytesUsed = pct(e.PolicyBytesUsed)
		sort.Strings(e.ServiceSets)
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].InterfaceName < out.Entries[j].InterfaceName })
	return out
}

// cpuSampler measures the process's CPU time between two queries.
type cpuSampler struct {
	mu   sync.Mutex
	at   time.Time
	used time.Duration
}

var started = time.Now()

func (c *cpuSampler) sample(now time.Time) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	c.mu.Lock()
	defer c.mu.Unlock()
	at, before := c.at, c.used
	if at.IsZero() {
		at = started
	}
	c.at, c.used = now, used
	wall := now.Sub(at)
	if wall <= 0 {
		return 0
	}
	return float64(used-before) * 100 / float64(wall)
}

// memTotal is the host's memory in bytes, 0 when unknown.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
