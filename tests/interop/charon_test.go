package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// Charon is one strongSwan charon in the topology's sw- namespace, in a
// private mount namespace whose /run is its own directory (charon always
// writes /var/run/charon.pid, INTEROP.md).
type Charon struct {
	t    *testing.T
	Dir  string
	proc *Proc
}

// charonData is what the strongswan.conf and swanctl.conf templates read.
type charonData struct {
	RunDir                   string
	Local, Peer              string
	LocalLAN, RemoteLAN, PSK string
	Set                      Set
}

// StartCharon writes charon's configuration for set, starts it and loads
// the connection "sitesec" (child "net") with swanctl. It initiates nothing.
func (tp *Topo) StartCharon(set Set) *Charon {
	t := tp.t
	t.Helper()
	// Not t.TempDir: the vici socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "swan-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := charonData{RunDir: dir, Local: SwanOutside, Peer: SiteOutside, LocalLAN: SwanLAN, RemoteLAN: SiteLAN, PSK: psk, Set: set}
	if set.PKI != nil {
		// swanctl loads credentials from the directories beside its
		// swanctl.conf: x509 (own certificate), x509ca, private.
		f := set.PKI.Files(t, dir, SwanOutside)
		for _, m := range []struct{ from, dir, name string }{{f.Cert, "x509", "swan.pem"}, {f.CA, "x509ca", "ca.pem"}, {f.Key, keyDir(set.CertKey), "swan.key"}} {
			if err := os.MkdirAll(filepath.Join(dir, m.dir), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(m.from, filepath.Join(dir, m.dir, m.name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := render("strongswan.conf.tmpl", filepath.Join(dir, "strongswan.conf"), d); err != nil {
		t.Fatal(err)
	}
	if err := render("swanctl.conf.tmpl", filepath.Join(dir, "swanctl.conf"), d); err != nil {
		t.Fatal(err)
	}
	c := &Charon{t: t, Dir: dir}
	// ip netns exec, unshare and sh all exec: the process is charon.
	c.proc = tp.Spawn(tp.Swan, "env", "STRONGSWAN_CONF="+filepath.Join(dir, "strongswan.conf"),
		"unshare", "--mount", "sh", "-c", "mount --bind "+dir+" /run && exec /usr/lib/ipsec/charon")
	t.Cleanup(c.Stop)
	sock := filepath.Join(dir, "charon.vici")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			c.proc.Kill()
			out, _ := c.proc.Wait(time.Second)
			log, _ := os.ReadFile(filepath.Join(dir, "charon.log"))
			t.Fatalf("charon did not open its vici socket %s: %s\nlog:\n%s", sock, out, log)
		}
	}
	if out, err := c.Swanctl("--load-all", "--file", filepath.Join(dir, "swanctl.conf")); err != nil {
		t.Fatalf("swanctl --load-all: %v\n%s", err, out)
	}
	return c
}

// Swanctl runs swanctl against this charon's vici socket.
func (c *Charon) Swanctl(args ...string) (string, error) {
	args = append(args, "--uri", "unix://"+filepath.Join(c.Dir, "charon.vici"))
	cmd := exec.Command("swanctl", args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return string(out), fmt.Errorf("swanctl %s: timed out", strings.Join(args, " "))
	}
	if err != nil {
		return string(out), fmt.Errorf("swanctl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// ListSAs is `swanctl --list-sas` (empty on error).
func (c *Charon) ListSAs() string {
	out, err := c.Swanctl("--list-sas")
	if err != nil {
		return err.Error() + "\n" + out
	}
	return out
}

// Kill ends charon at once (SIGKILL), as a crashed peer.
func (c *Charon) Kill() { c.proc.Kill() }

// Stop ends charon (SIGKILL: nothing of it outlives the test) .
func (c *Charon) Stop() { c.proc.Kill() }

// Log returns the end of charon's log.
func (c *Charon) Log(lines int) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "charon.log"))
	return harness.LastLines(string(b), lines)
}

// keyDir is the swanctl directory for a private key of keyType.
func keyDir(keyType string) string {
	if keyType == "ecdsa-p256" {
		return "ecdsa"
	}
	return "private"
}
