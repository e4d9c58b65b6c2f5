package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// Tunnel is the data of testdata/tunnel.conf.tmpl for one router.
type Tunnel struct {
	HostName      string
	Outside, Peer string // local-gateway and remote-gateway
	Inside        string // the LAN-side address of the router
	LocalLAN      string
	RemoteLAN     string
	// Auth is "manual", "psk", "psk-v1" or "cert".
	Auth string
	// Protocol is the IPsec protocol of the term's SAs: "" (esp), "ah"
	// or "bundle" (issue 13).
	Protocol string
	// NoTraceroute sets no-ipsec-tunnel-in-traceroute.
	NoTraceroute bool
	// Trace adds traceoptions for kmd, pkid, fwdd and cfgd at TraceLevel,
	// with the flag of each daemon's own flag list.
	Trace                       bool
	TraceLevel                  string
	ProcFlag, KmdFlag, PkidFlag string
	// TraceSuffix is appended to each trace file name (default: the
	// daemon's name, <root>/var/log/<daemon>).
	TraceSuffix string
}

// TunnelFor returns the configuration of r2 or r3 for auth.
func TunnelFor(router, auth string) Tunnel {
	if router == "r2" {
		return Tunnel{HostName: "r2", Outside: R2Outside, Peer: R3Outside, Inside: R2Inside, LocalLAN: LAN1, RemoteLAN: LAN4, Auth: auth}
	}
	return Tunnel{HostName: "r3", Outside: R3Outside, Peer: R2Outside, Inside: R3Inside, LocalLAN: LAN4, RemoteLAN: LAN1, Auth: auth}
}

// Testdata returns the path of a file in tests/e2e/testdata.
func Testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", name)
}

// Render renders testdata/tunnel.conf.tmpl.
func (c Tunnel) Render() (string, error) {
	tm, err := template.ParseFiles(Testdata("tunnel.conf.tmpl"))
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tm.Execute(&b, c); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Commit loads conf (Junos text) into r with `load override` and commits
// it, as an operator would: the cli with the commands on standard input.
// It returns the cli's output; err is set when the cli exited non-zero.
func Commit(r *harness.Router, conf string) (string, error) {
	f, err := os.CreateTemp(r.Root, "commit-*.conf")
	if err != nil {
		return "", err
	}
	// The file may hold keys: 0600 (CreateTemp's mode).
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return "", err
	}
	f.Close()
	script := fmt.Sprintf("configure\nload override %s\ncommit\nexit configuration-mode\n", f.Name())
	return CLIScript(r, script, 60*time.Second)
}

// CLIScript runs the cli of r with script on standard input.
func CLIScript(r *harness.Router, script string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cli := filepath.Join(r.Bin, "cli")
	var c *exec.Cmd
	if r.Netns != "" {
		c = exec.CommandContext(ctx, "ip", "netns", "exec", r.Netns, cli, "--root", r.Root)
	} else {
		c = exec.CommandContext(ctx, cli, "--root", r.Root)
	}
	c.Stdin = strings.NewReader(script)
	out, err := c.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("cli timed out after %s", timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("cli: %w", err)
	}
	return string(out), nil
}

// CommitTunnel renders and commits c on r; on failure the test skips (the
// configuration is valid Junos, so a refusal means cfgd or a daemon does
// not support it yet) with cfgd's answer as the reason.
func CommitTunnel(t testing.TB, r *harness.Router, c Tunnel) string {
	t.Helper()
	conf, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Commit(r, conf)
	Need(t, err == nil && strings.Contains(out, "commit complete"),
		"commit of the %s tunnel configuration on %s is not accepted yet: %v: %s", c.Auth, c.HostName, err, lastLines(out, 6))
	return out
}

// lastLines returns the last n lines of s, joined with " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
