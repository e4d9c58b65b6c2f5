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
	"syscall"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// Compose drives one docker compose project (deploy/two-routers by
// default) under a unique project name, torn down with its volumes in
// t.Cleanup.
type Compose struct {
	t       testing.TB
	cmd     []string // "docker-compose" or "docker compose"
	File    string
	Project string
	Env     []string
	// Passwords of the bus users (SITESEC_PW_*), given in Env.
	Passwords map[string]string
	// CA verifies the bus servers' TLS certificates (deploy/certs.sh).
	CA string
	// Single: deploy/compose.yaml, whose one router's server is "nats".
	Single bool
	bin    string
}

// Repo returns the repository root.
func Repo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RequireDocker skips unless the docker engine answers and a compose tool
// (docker compose or docker-compose) is installed; it returns the compose
// command.
func RequireDocker(t testing.TB) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("needs docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("docker engine not usable: %v: %s", err, bytes.TrimSpace(out))
	}
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("needs docker compose or docker-compose")
	return nil
}

// LockCompose serializes the compose examples on this machine: their
// subnets are fixed, so two copies cannot run on one docker engine at once
// (another test binary, or a developer's run, may be using it). It waits
// up to d for the lock, held until the test's cleanup ends.
func LockCompose(t testing.TB, d time.Duration) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "sitesec-compose.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(d); ; time.Sleep(time.Second) {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Skipf("another run of the compose example holds %s for more than %s", f.Name(), d)
		}
	}
	// Registered first, so it runs last: after compose down.
	t.Cleanup(func() { f.Close() })
}

// BuildImages runs scripts/images.sh (the images of make images).
func BuildImages(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, filepath.Join(Repo(), "scripts", "images.sh"))
	c.Dir = Repo()
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("scripts/images.sh: %v\n%s", err, out)
	}
}

// NewCompose prepares a project for file with fresh bus passwords.
func NewCompose(t testing.TB, cmd []string, file, bin string) *Compose {
	c := &Compose{t: t, cmd: cmd, File: file, Project: "sse2e" + harness.RandHex(3), Passwords: map[string]string{}, bin: bin}
	c.Env = os.Environ()
	// The buses are TLS only: a CA and server certificate of their own.
	certs := exec.Command(filepath.Join(Repo(), "deploy", "certs.sh"))
	if out, err := certs.CombinedOutput(); err != nil {
		t.Fatalf("deploy/certs.sh: %v\n%s", err, out)
	}
	c.CA = filepath.Join(Repo(), "deploy", "certs", "ca.pem")
	for _, u := range []string{"SITESECD", "CFGD", "KMD", "PKID", "FWDD", "CLI"} {
		pw := harness.RandHex(12)
		c.Passwords[u] = pw
		c.Env = append(c.Env, "SITESEC_PW_"+u+"="+pw)
	}
	return c
}

// Run runs a compose subcommand with a timeout.
func (c *Compose) Run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	all := append(append([]string{}, c.cmd[1:]...), "-f", c.File, "-p", c.Project)
	all = append(all, args...)
	x := exec.CommandContext(ctx, c.cmd[0], all...)
	x.Env = c.Env
	x.Dir = filepath.Dir(c.File)
	out, err := x.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", strings.Join(c.cmd, " "), strings.Join(args, " "), err, lastLines(string(out), 10))
	}
	return string(out), nil
}

// Up starts the project and registers its teardown (down -v).
func (c *Compose) Up() {
	c.t.Helper()
	c.t.Cleanup(func() {
		if c.t.Failed() {
			if out, err := c.Run(time.Minute, "logs", "--no-color", "--tail", "30"); err == nil {
				c.t.Logf("compose logs:\n%s", out)
			}
		}
		if out, err := c.Run(2*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			c.t.Logf("compose down: %v\n%s", err, out)
		}
	})
	if out, err := c.Run(3*time.Minute, "up", "-d"); err != nil {
		c.t.Fatalf("%v\n%s", err, out)
	}
}

// Container returns the id of service's container.
func (c *Compose) Container(service string) string {
	c.t.Helper()
	out, err := c.Run(30*time.Second, "ps", "-q", service)
	id := strings.TrimSpace(out)
	if err != nil || id == "" {
		c.t.Fatalf("no container for %s: %v %s", service, err, out)
	}
	return id
}

// BusURL is the host's URL of router r's NATS server (its published port);
// the cli's credentials go in its environment (CLI).
func (c *Compose) BusURL(r string) string {
	c.t.Helper()
	svc := "nats-" + r
	if c.Single {
		svc = "nats"
	}
	out, err := c.Run(30*time.Second, "port", svc, "4222")
	if err != nil {
		c.t.Fatal(err)
	}
	return "nats://" + strings.TrimSpace(out)
}

// CLI runs the cli on this machine against router r, with script on
// standard input (or -c when script is one line without a newline).
func (c *Compose) CLI(r, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--bus", c.BusURL(r), "--name", r}
	if !strings.Contains(script, "\n") {
		args = append(args, "-c", script)
	}
	x := exec.CommandContext(ctx, filepath.Join(c.bin, "cli"), args...)
	x.Env = append(os.Environ(), "SITESEC_BUS_USER=cli", "SITESEC_BUS_PASSWORD="+c.Passwords["CLI"], "SITESEC_BUS_CA="+c.CA)
	x.Stdin = strings.NewReader(script)
	out, err := x.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("cli %s: %q: %w: %s", r, firstLine(script), err, lastLines(string(out), 6))
	}
	return string(out), nil
}

// Commit loads conf into router r and commits it. The cli reads the file
// it is given itself (cfgd opens no file), so it stays on this machine.
func (c *Compose) Commit(r, conf string) (string, error) {
	f, err := os.CreateTemp("", "sitesec-compose-*.conf")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	f.WriteString(conf)
	f.Close()
	return c.CLI(r, "configure\nload override "+f.Name()+"\ncommit\nexit configuration-mode\n")
}

// Exec runs a command in service's container (the image's binary is
// /sitesec).
func (c *Compose) Exec(timeout time.Duration, service string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	x := exec.CommandContext(ctx, "docker", append([]string{"exec", c.Container(service)}, args...)...)
	out, err := x.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker exec %s %v: %w: %s", service, args, err, lastLines(string(out), 4))
	}
	return string(out), nil
}

// HasLink reports whether service's container has network interface name
// (looked at from this machine with nsenter: the images have no ip).
func (c *Compose) HasLink(service, name string) bool {
	pid, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", c.Container(service)).Output()
	if err != nil {
		return false
	}
	return exec.Command("nsenter", "-t", strings.TrimSpace(string(pid)), "-n", "ip", "link", "show", "dev", name).Run() == nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
