package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/services/trace"
	"github.com/sitesec/sitesec/tests/harness"
)

// traceLine is what TestTracingFollowsCommit needs of a trace file line
// (services/trace: "Nov 27 21:15:02.123456 kmd[1234]: ike: error: msg k=v").
type traceLine struct {
	flag  string // "" for lifecycle lines (starting, configuration applied, ...)
	error bool
	text  string
}

var allFlags = func() []string {
	var fs []string
	for _, l := range [][]trace.Flag{trace.KMDFlags, trace.PKIDFlags, trace.ProcessFlags} {
		for _, f := range l {
			fs = append(fs, string(f))
		}
	}
	return fs
}()

func parseTrace(b []byte) []traceLine {
	var out []traceLine
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		_, rest, ok := strings.Cut(l, "]: ")
		if !ok {
			continue
		}
		tl := traceLine{text: l}
		if w, after, ok := strings.Cut(rest, ": "); ok && slices.Contains(allFlags, w) {
			tl.flag = w
			tl.error = strings.HasPrefix(after, "error: ")
		}
		out = append(out, tl)
	}
	return out
}

// TestTracingFollowsCommit checks SPEC's tracing: a commit that changes
// traceoptions (file, flags, level) changes what each daemon writes, with no
// restart. kmd follows services ipsec-vpn traceoptions, pkid security pki
// traceoptions, cfgd and fwdd system processes NAME traceoptions.
func TestTracingFollowsCommit(t *testing.T) {
	tp := NewTopology(t, false)
	tp.StartRouters()
	routers := []struct {
		name string
		r    *harness.Router
	}{{"r2", tp.R2}, {"r3", tp.R3}}
	pids, err := processes(tp.R2)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(level, suffix string, loud bool) {
		for _, r := range routers {
			c := TunnelFor(r.name, "psk")
			c.Trace, c.TraceLevel, c.TraceSuffix = true, level, suffix
			c.ProcFlag, c.KmdFlag, c.PkidFlag = "general", "general", "enrollment"
			if loud {
				c.ProcFlag, c.KmdFlag, c.PkidFlag = "all", "all", "all"
			}
			CommitTunnel(t, r.r, c)
		}
	}
	// Work for every daemon: traffic (fwdd), a new IKE SA (kmd), show
	// commands (cfgd routes them, pkid answers its own).
	activity := func() {
		tp.Ping("r1", R4, 3)
		for _, cmd := range []string{"clear services ipsec-vpn ike security-associations", "show security pki ca-certificate", "show services ipsec-vpn ipsec statistics", "show configuration system"} {
			_, _ = tp.R2.CLI(cmd)
		}
		tp.WaitPing("r1", R4, 10*time.Second)
	}
	logDir := filepath.Join(tp.R2.Root, "var", "log")
	daemons := []string{"cfgd", "kmd", "pkid", "fwdd"}

	commit("error", "-quiet", false)
	activity()
	commit("all", "-loud", true)
	quietSize := map[string]int64{}
	for _, d := range daemons {
		if st, err := os.Stat(filepath.Join(logDir, d+"-quiet")); err == nil {
			quietSize[d] = st.Size()
		}
	}
	activity()
	time.Sleep(time.Second)

	for _, d := range daemons {
		quiet, err := os.ReadFile(filepath.Join(logDir, d+"-quiet"))
		if err != nil {
			t.Errorf("%s: the committed trace file %s-quiet was not opened: %v", d, d, err)
			continue
		}
		if !strings.Contains(string(quiet), "configuration applied") {
			t.Errorf("%s-quiet has no \"configuration applied\" line:\n%s", d, quiet)
		}
		for _, l := range parseTrace(quiet) {
			if l.flag != "" && !l.error {
				t.Errorf("%s wrote below level error with level error committed: %s", d, l.text)
			}
		}
		if int64(len(quiet)) != quietSize[d] {
			t.Errorf("%s still wrote %d bytes to %s-quiet after the file was changed by commit", d, int64(len(quiet))-quietSize[d], d)
		}
		loud, err := os.ReadFile(filepath.Join(logDir, d+"-loud"))
		if err != nil {
			t.Errorf("%s: the committed trace file %s-loud was not opened: %v", d, d, err)
			continue
		}
		n := 0
		for _, l := range parseTrace(loud) {
			if l.flag != "" && !l.error {
				n++
			}
		}
		t.Logf("%s: %d lines at level error, %d lines below error at level all", d, len(parseTrace(quiet)), n)
		if n == 0 {
			t.Logf("%s wrote nothing below level error even with flag all level all (nothing traced on this path yet):\n%s", d, loud)
		}
	}
	// At least the daemons that trace their work at level all: a commit
	// must have turned those lines on.
	loudAny := false
	for _, d := range daemons {
		b, _ := os.ReadFile(filepath.Join(logDir, d+"-loud"))
		for _, l := range parseTrace(b) {
			loudAny = loudAny || (l.flag != "" && !l.error)
		}
	}
	Need(t, loudAny, "no daemon traces anything below level error yet")
	now, err := processes(tp.R2)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range daemons {
		if now[d].Pid != pids[d].Pid {
			t.Errorf("%s restarted (pid %d -> %d): traceoptions must apply without a restart", d, pids[d].Pid, now[d].Pid)
		}
	}
}
