package daemon

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://kmd:s3cret@127.0.0.1:4222": "nats://kmd:xxxxx@127.0.0.1:4222",
		"nats://127.0.0.1:4222":            "nats://127.0.0.1:4222",
		"tls://u:p@h:1":                    "tls://u:xxxxx@h:1",
		"nats://u:p%zz@h:1":                "(unparsable URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCredentialFD(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("the-password\n")
	w.Close()
	// A descriptor of its own, as a child inherits it: parseFlags closes it.
	fd, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Setenv(EnvCredentialFD, strconv.Itoa(fd))
	t.Setenv(EnvPassword, "")
	o, err := parseFlags("kmd", []string{"--bus", "nats://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if o.password != "the-password" || o.user != "kmd" {
		t.Errorf("user %q password %q", o.user, o.password)
	}
	if os.Getenv(EnvCredentialFD) != "" {
		t.Error("descriptor variable left for children")
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err == nil {
		t.Error("credential pipe left open")
	}

	for _, bad := range []string{"x", "1", "999"} {
		t.Setenv(EnvCredentialFD, bad)
		if _, err := parseFlags("kmd", []string{"--bus", "nats://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "descriptor") {
			t.Errorf("%s=%s: %v", EnvCredentialFD, bad, err)
		}
	}
}
