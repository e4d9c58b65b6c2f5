package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/busfile"
)

// Environment variables a supervisor may set instead of flags. The password
// never travels on the command line, where ps shows it: sitesecd hands each
// daemon its own on an inherited pipe (EnvCredentialFD), read once at start
// and closed, so it is in no file, environment or argument list; docker
// compose gives each container its own in the environment (EnvPassword).
const (
	EnvBus          = "SITESEC_BUS"
	EnvUser         = "SITESEC_BUS_USER"
	EnvPassword     = "SITESEC_BUS_PASSWORD"
	EnvCredentialFD = "SITESEC_BUS_CREDENTIAL_FD"
	EnvRouter       = "SITESEC_ROUTER"
	// EnvCA is the CA file that verifies a TLS bus (--bus-ca).
	EnvCA = "SITESEC_BUS_CA"
)

// maxCredential bounds what is read from the credential descriptor.
const maxCredential = 4096

var errHelp = errors.New("help requested")

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

type options struct {
	root     string
	busURL   string
	busRoot  string
	busCA    string
	router   string
	user     string
	password string
	wait     time.Duration
}

// display names the bus in traces, without a password.
func (o options) display() string {
	if o.busURL == "" {
		return "(none)"
	}
	return RedactURL(o.busURL)
}

// RedactURL is u with the password of nats://user:password@host replaced
// by "xxxxx", for traces and process lists.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		if i := strings.LastIndexByte(u, '@'); i >= 0 && err != nil {
			return "(unparsable URL)"
		}
		return u
	}
	return p.Redacted()
}

// readCredential reads the password sitesecd wrote on descriptor fd, and
// closes it.
func readCredential(fd string) (string, error) {
	n, err := strconv.Atoi(fd)
	if err != nil || n < 3 {
		return "", fmt.Errorf("%s=%q: not a descriptor number", EnvCredentialFD, fd)
	}
	f := os.NewFile(uintptr(n), "bus credential")
	if f == nil {
		return "", fmt.Errorf("%s=%d: no such descriptor", EnvCredentialFD, n)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredential+1))
	if err != nil {
		return "", fmt.Errorf("read the bus credential from descriptor %d: %v", n, err)
	}
	if len(b) > maxCredential {
		return "", fmt.Errorf("bus credential on descriptor %d longer than %d bytes", n, maxCredential)
	}
	return strings.TrimSpace(string(b)), nil
}

func parseFlags(name string, args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.root, "root", "/", "root `directory`: traces in DIR/var/log, state in DIR/var/db")
	fs.StringVar(&o.busURL, "bus", os.Getenv(EnvBus), "NATS `URL` (default: the router's bus found under --root)")
	fs.StringVar(&o.busCA, "bus-ca", os.Getenv(EnvCA), "CA `file` (PEM) of the bus server's TLS certificate: the bus is then TLS only")
	fs.StringVar(&o.busRoot, "bus-root", subject.DefaultRoot, "first token of every bus subject")
	fs.StringVar(&o.router, "name", os.Getenv(EnvRouter), "router `name` on the bus (default r0)")
	fs.DurationVar(&o.wait, "bus-wait", 3*time.Second, "how long to wait for the bus at start")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprintf(os.Stderr, "usage: %s [flags]\n", name)
			fs.PrintDefaults()
			return o, errHelp
		}
		return o, usageError{err}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	o.user, o.password = os.Getenv(EnvUser), os.Getenv(EnvPassword)
	if fd := os.Getenv(EnvCredentialFD); fd != "" {
		pw, err := readCredential(fd)
		if err != nil {
			return o, err
		}
		o.password = pw
		os.Unsetenv(EnvCredentialFD)
	}
	os.Unsetenv(EnvPassword)
	if o.user == "" {
		o.user = name
	}
	if o.busURL == "" {
		in, err := busfile.Read(o.root)
		if err != nil {
			return o, err
		}
		o.busURL = in.URL
		if o.busCA == "" {
			o.busCA = in.CA
		}
		if o.router == "" {
			o.router = in.Router
		}
		if in.SubjectRoot != "" && o.busRoot == subject.DefaultRoot {
			o.busRoot = in.SubjectRoot
		}
		if o.password == "" {
			o.password = in.Passwords[o.user]
		}
	}
	return o, nil
}

// connect joins the bus, retrying for o.wait so that a daemon started
// together with its bus (docker compose) does not lose the race.
func connect(ctx context.Context, space subject.Space, name string, o options) (*bus.Conn, error) {
	bo := bus.Options{URL: o.busURL, Name: name, Daemon: name, CAFile: o.busCA}
	if o.password != "" {
		bo.User, bo.Password = o.user, o.password
	}
	deadline := time.Now().Add(o.wait)
	for {
		c, err := bus.Connect(ctx, space, bo)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
