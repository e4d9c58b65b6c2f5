package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/busfile"
	"github.com/sitesec/sitesec/tests/harness"
)

// waitConnected waits until the four daemons report heartbeats.
func waitConnected(t *testing.T, r *harness.Router) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out = r.MustCLI("show system processes")
		if strings.Count(out, " connected ") >= 4 {
			return out
		}
	}
	t.Fatalf("want 4 daemons connected:\n%s", out)
	return ""
}

// TestEachDaemonHoldsOnlyItsCredential (issue 14 item 1): the bus file
// holds the cli's password alone (it held every daemon's, so any process
// could become any daemon), no daemon has a password in its environment
// or arguments, and the cli's password is no daemon's.
func TestEachDaemonHoldsOnlyItsCredential(t *testing.T) {
	r := harness.Start(t)
	waitConnected(t, r)
	st, err := os.Stat(busfile.Path(r.Root))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("bus file mode %04o", st.Mode().Perm())
	}
	in, err := busfile.Read(r.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Passwords) != 1 || in.Passwords[subject.CLI] == "" {
		t.Fatalf("bus file holds passwords of %v, want the cli's alone", keys(in.Passwords))
	}
	cliPW := in.Passwords[subject.CLI]
	for _, d := range subject.Daemons {
		pid, _ := pidOf(t, r, d)
		for _, f := range []string{"environ", "cmdline"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "SITESEC_BUS_PASSWORD") || strings.Contains(string(b), cliPW) {
				t.Errorf("%s has a bus password in its %s", d, f)
			}
		}
		// The credential pipe is read and closed at start.
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid)); err == nil && strings.HasPrefix(link, "pipe:") {
			t.Errorf("%s still holds its credential pipe open (fd 3 %s)", d, link)
		}
		// The cli's password does not open a daemon's account.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := bus.Connect(ctx, subject.Space{Root: in.SubjectRoot, Router: in.Router}, bus.Options{URL: in.URL, User: d, Password: cliPW})
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("the bus file's password logs in as %s", d)
		} else if !strings.Contains(err.Error(), "authorization violation") {
			t.Errorf("as %s with the cli's password: %v", d, err)
		}
	}
	// And the launcher traced none of it.
	tr := r.Trace(subject.Sitesecd)
	if strings.Contains(tr, cliPW) {
		t.Error("sitesecd's trace holds the cli's password")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBusPasswordNotTraced (issue 14, low): a router on an external
// server with per-daemon credentials (--bus-credentials) and a password in
// --bus shows and traces no password, and each daemon logs in as itself.
func TestBusPasswordNotTraced(t *testing.T) {
	space, _ := subject.New("", "ext2")
	pw := map[string]string{}
	var users []broker.User
	var file strings.Builder
	for _, u := range append([]string{subject.CLI}, subject.Everyone...) {
		pw[u] = fmt.Sprintf("pw-%s-%d", u, time.Now().UnixNano())
		users = append(users, broker.UserFor(space, u, pw[u]))
		fmt.Fprintf(&file, "SITESEC_PW_%s=%s\n", strings.ToUpper(u), pw[u])
	}
	srv, err := broker.Start(broker.Options{StoreDir: t.TempDir(), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	creds := filepath.Join(t.TempDir(), "bus.env")
	if err := os.WriteFile(creds, []byte(file.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(srv.ClientURL(), "nats://", "nats://sitesecd:"+pw[subject.Sitesecd]+"@", 1)
	bad := harness.Bin(t)
	if out, err := runFor(5*time.Second, filepath.Join(bad, "sitesecd"), "--root", t.TempDir(), "--bus", url, "--bus-credentials", creds, "--name", "ext2"); err == nil || !strings.Contains(out, "make it 0600") {
		t.Errorf("a credentials file readable by others accepted: %v\n%s", err, out)
	}
	os.Chmod(creds, 0o600)

	r := harness.Start(t, "--bus", url, "--bus-credentials", creds, "--name", "ext2")
	out := waitConnected(t, r)
	if !strings.Contains(out, "bus: nats://sitesecd:xxxxx@") {
		t.Errorf("show system processes names the bus without its password redacted:\n%s", out)
	}
	for _, d := range subject.Everyone {
		tr := r.Trace(d)
		if tr == "" {
			t.Errorf("%s traced nothing", d)
		}
		for u, p := range pw {
			if strings.Contains(tr, p) {
				t.Errorf("%s's trace holds %s's password", d, u)
			}
		}
	}
	for u, p := range pw {
		if strings.Contains(out, p) || strings.Contains(r.Out.String(), p) {
			t.Errorf("%s's password shown", u)
		}
	}
}

// runFor runs a command for at most d and returns its output.
func runFor(d time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// TestEmbeddedBusBeyondLoopbackIsTLS: the embedded server listens beyond
// this machine only with TLS (DESIGN.md, "The bus"); then the daemons and
// the cli verify its certificate, and a client without TLS gets nothing.
func TestEmbeddedBusBeyondLoopbackIsTLS(t *testing.T) {
	bin := harness.Bin(t)
	if out, err := runFor(10*time.Second, filepath.Join(bin, "sitesecd"), "--root", t.TempDir(), "--listen", "0.0.0.0:0"); err == nil || !strings.Contains(out, "needs TLS") {
		t.Errorf("--listen 0.0.0.0 without a certificate: %v %s", err, out)
	}
	repo, _ := filepath.Abs(filepath.Join("..", "deploy"))
	if out, err := runFor(30*time.Second, filepath.Join(repo, "certs.sh")); err != nil {
		t.Fatalf("deploy/certs.sh: %v %s", err, out)
	}
	certs := filepath.Join(repo, "certs")
	r := harness.Start(t, "--listen", "0.0.0.0:0", "--listen-cert", filepath.Join(certs, "server.pem"),
		"--listen-key", filepath.Join(certs, "server-key.pem"), "--bus-ca", filepath.Join(certs, "ca.pem"))
	waitConnected(t, r)
	in, err := busfile.Read(r.Root)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(in.URL, "tls://") || in.CA == "" {
		t.Errorf("bus file: url %s, ca %q", in.URL, in.CA)
	}
	plain := strings.Replace(in.URL, "tls://", "nats://", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if c, err := bus.Connect(ctx, subject.Space{Root: in.SubjectRoot, Router: in.Router}, bus.Options{URL: plain, User: subject.CLI, Password: in.Passwords[subject.CLI]}); err == nil {
		c.Close()
		t.Error("a client without TLS connected")
	}
}
