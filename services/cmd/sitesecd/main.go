// Command sitesecd runs one sitesec router: the embedded NATS server and
// the cfgd, pkid, fwdd and kmd daemons, each its own process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/daemon"
	"github.com/sitesec/sitesec/services/launcher"
)

func main() {
	var o launcher.Options
	fs := flag.NewFlagSet("sitesecd", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.StringVar(&o.Root, "root", "", "router root `directory` (traces in DIR/var/log, state in DIR/var/db); required")
	fs.StringVar(&o.Config, "config", "", "configuration `file` (curly-brace or set lines) committed at start")
	fs.StringVar(&o.BusURL, "bus", "", "external NATS server `URL` (default: run the embedded server)")
	fs.StringVar(&o.BusCA, "bus-ca", os.Getenv(daemon.EnvCA), "CA `file` (PEM) of the bus server's TLS certificate (--bus, or the embedded server with --listen-cert); the daemons and the cli get it too")
	fs.StringVar(&o.ListenCert, "listen-cert", "", "embedded server: TLS certificate `file` (PEM); needed to --listen beyond the loopback")
	fs.StringVar(&o.ListenKey, "listen-key", "", "embedded server: TLS key `file` (PEM)")
	fs.StringVar(&o.BusCredentials, "bus-credentials", "", "with --bus: `file` of SITESEC_PW_<USER>=PASSWORD lines (deploy/env.sh, mode 0600); each daemon gets only its own")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "embedded server `address` (port 0: any free port)")
	fs.StringVar(&o.SubjectRoot, "bus-root", subject.DefaultRoot, "first token of every bus subject")
	fs.StringVar(&o.Router, "name", subject.DefaultRouter, "router `name` on the bus")
	fs.StringVar(&o.BinDir, "bin", "", "`directory` holding cfgd, kmd, pkid and fwdd (default: sitesecd's own)")
	setup := fs.Bool("setup-bus", false, "create the router's buckets on the --bus server and exit (docker compose's one-shot; user sitesecd, password in $"+daemon.EnvPassword+")")
	wait := fs.Duration("bus-wait", 30*time.Second, "with --setup-bus: how long to wait for the server")
	fs.Usage = func() {}
	fs.SetOutput(new(discard))
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprintln(os.Stderr, "usage: sitesecd --root DIR [--config FILE] [--bus nats://HOST:PORT]")
			fs.PrintDefaults()
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "sitesecd: %v\n", err)
		os.Exit(2)
	}
	if *setup {
		if fs.NArg() > 0 || o.BusURL == "" {
			fmt.Fprintln(os.Stderr, "sitesecd: usage: sitesecd --setup-bus --bus nats://HOST:PORT [--name ROUTER]")
			os.Exit(2)
		}
		if err := setupBus(o, *wait); err != nil {
			fmt.Fprintf(os.Stderr, "sitesecd: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if fs.NArg() > 0 || o.Root == "" {
		fmt.Fprintln(os.Stderr, "sitesecd: usage: sitesecd --root DIR [--config FILE] [--bus nats://HOST:PORT]")
		os.Exit(2)
	}
	if o.BinDir == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(os.Stderr, "sitesecd: %v\n", err)
			os.Exit(1)
		}
		o.BinDir = filepath.Dir(self)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := launcher.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "sitesecd: %v\n", err)
		os.Exit(1)
	}
}

// setupBus creates the router's JetStream buckets on a standalone server
// as the sitesecd user, the only one allowed to (broker.RightsOf), retrying
// the connection for wait while the server starts.
func setupBus(o launcher.Options, wait time.Duration) error {
	space, err := subject.New(o.SubjectRoot, o.Router)
	if err != nil {
		return err
	}
	user := os.Getenv(daemon.EnvUser)
	if user == "" {
		user = subject.Sitesecd
	}
	bo := bus.Options{URL: o.BusURL, User: user, Password: os.Getenv(daemon.EnvPassword), Name: "sitesecd --setup-bus", CAFile: o.BusCA}
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	var c *bus.Conn
	for deadline := time.Now().Add(wait); ; time.Sleep(200 * time.Millisecond) {
		if c, err = bus.Connect(ctx, space, bo); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetupBuckets(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sitesecd: buckets of router %s ready\n", space.Router)
	return nil
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
