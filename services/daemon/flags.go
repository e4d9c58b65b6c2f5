package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/busfile"
)

// Environment variables a supervisor may set instead of flags. The password
// travels in the environment, never on the command line where ps shows it.
const (
	EnvBus      = "SITESEC_BUS"
	EnvUser     = "SITESEC_BUS_USER"
	EnvPassword = "SITESEC_BUS_PASSWORD"
	EnvRouter   = "SITESEC_ROUTER"
)

var errHelp = errors.New("help requested")

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

type options struct {
	root     string
	busURL   string
	busRoot  string
	router   string
	user     string
	password string
	wait     time.Duration
}

func (o options) display() string {
	if o.busURL == "" {
		return "(none)"
	}
	return o.busURL
}

func parseFlags(name string, args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.root, "root", "/", "root `directory`: traces in DIR/var/log, state in DIR/var/db")
	fs.StringVar(&o.busURL, "bus", os.Getenv(EnvBus), "NATS `URL` (default: the router's bus found under --root)")
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
	if o.user == "" {
		o.user = name
	}
	if o.busURL == "" {
		in, err := busfile.Read(o.root)
		if err != nil {
			return o, err
		}
		o.busURL = in.URL
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
	bo := bus.Options{URL: o.busURL, Name: name}
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
