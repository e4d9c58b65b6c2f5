// Package launcher is sitesecd, the analogue of Junos init: it starts the
// embedded NATS server (unless the router uses an external bus), starts
// cfgd, pkid, fwdd and kmd as separate OS processes, restarts any that
// exits (with backoff), and serves `restart <daemon>` and `show system
// processes` on the bus.
//
// One launcher is one router. It holds an exclusive lock on
// <root>/var/run/sitesecd.lock, so a second launcher on the same root
// fails at once without touching the running one.
package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/busfile"
	"github.com/sitesec/sitesec/services/daemon"
	"github.com/sitesec/sitesec/services/opfile"
	"github.com/sitesec/sitesec/services/trace"
)

const heartbeatEvery = 2 * time.Second

// Options configure one router.
type Options struct {
	Root string
	// BinDir holds the daemon binaries (cfgd, kmd, pkid, fwdd).
	BinDir string
	// BusURL is an external NATS server; empty runs the embedded one.
	BusURL string
	// BusCredentials is a file of SITESEC_PW_<USER>=PASSWORD lines (the
	// format of deploy/env.sh, mode 0600) for an external server: the
	// launcher connects as sitesecd and hands each daemon its own.
	BusCredentials string
	// BusCA is the CA file that verifies the server's TLS certificate
	// (an external one, or the embedded one with ListenCert); the daemons
	// and the cli (bus file) get it too.
	BusCA string
	// ListenCert and ListenKey make the embedded server TLS only; it
	// needs them to listen beyond the loopback.
	ListenCert, ListenKey string
	// Listen is the embedded server's address, "127.0.0.1:0" by default
	// (a free port, written to the bus file).
	Listen      string
	SubjectRoot string
	Router      string
	// Config is a configuration file committed at start.
	Config string
	// Daemons to run; default subject.Daemons.
	Daemons []string
	// Out receives the daemons' standard output and error.
	Out io.Writer
}

// Launcher is a running router.
type Launcher struct {
	o     Options
	space subject.Space
	tr    *trace.Tracer
	srv   *broker.Server
	conn  *bus.Conn
	lock  *os.File
	procs map[string]*process
	order []string
	busID string

	// The embedded server, replaced by `restart nats`.
	srvMu       sync.Mutex
	passwords   map[string]string
	natsStarted time.Time
	natsRestart uint32
	natsLast    string

	reportMu sync.Mutex
	// stopRun ends the supervision of every daemon (no more restarts).
	stopRun context.CancelFunc
}

// Run starts the router and blocks until ctx ends; then it stops every
// daemon and the bus.
func Run(ctx context.Context, o Options) error {
	l, err := start(ctx, o)
	if err != nil {
		return err
	}
	<-ctx.Done()
	l.shutdown()
	return nil
}

func start(ctx context.Context, o Options) (_ *Launcher, err error) {
	if o.Root == "" {
		return nil, errors.New("--root is required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if len(o.Daemons) == 0 {
		o.Daemons = subject.Daemons
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	o.Root = root
	space, err := subject.New(o.SubjectRoot, o.Router)
	if err != nil {
		return nil, err
	}
	// Everything that can be checked without side effects first: a bad
	// start must not disturb a router that already runs on this root.
	for _, d := range o.Daemons {
		if err := executable(filepath.Join(o.BinDir, d)); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "var", "run"), 0o755); err != nil {
		return nil, fmt.Errorf("cannot use root %s: %v", root, errors.Unwrap(err))
	}
	lock, err := lockRoot(root)
	if err != nil {
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	l := &Launcher{o: o, space: space, lock: lock, procs: map[string]*process{}, stopRun: stopRun}
	defer func() {
		if err != nil {
			l.shutdown()
		}
	}()
	if l.tr, err = trace.New(root, subject.Sitesecd, trace.ProcessFlags); err != nil {
		return nil, err
	}
	l.tr.Lifecycle().Int("pid", os.Getpid()).Str("root", root).Msg("starting")

	// Every process gets its own bus password, and only its own: the
	// daemons on an inherited pipe (process.start), the cli in the bus
	// file. The launcher keeps them all, since it starts the server.
	passwords := map[string]string{}
	for _, d := range append([]string{subject.Sitesecd, subject.CLI}, o.Daemons...) {
		passwords[d] = randomPassword()
	}
	busURL := o.BusURL
	bo := bus.Options{Name: subject.Sitesecd}
	if o.BusCA != "" {
		if o.BusCA, err = filepath.Abs(o.BusCA); err != nil {
			return nil, err
		}
		bo.CAFile = o.BusCA
	}
	if busURL == "" {
		l.passwords = passwords
		if l.srv, err = l.startBroker(l.o.Listen); err != nil {
			return nil, err
		}
		l.natsStarted = time.Now()
		// The launcher joins its own server over TCP like the daemons, so
		// its connection survives `restart nats` by reconnecting.
		busURL = l.srv.ClientURL()
		bo.URL = busURL
		bo.User, bo.Password = subject.Sitesecd, passwords[subject.Sitesecd]
		l.busID = "embedded"
	} else {
		bo.URL = busURL
		passwords = nil
		if o.BusCredentials != "" {
			if passwords, err = readCredentials(o.BusCredentials); err != nil {
				return nil, err
			}
			bo.User, bo.Password = subject.Sitesecd, passwords[subject.Sitesecd]
		}
		// The daemons get the server's address, never the launcher's own
		// credentials in it.
		busURL = stripUser(busURL)
		l.busID = daemon.RedactURL(o.BusURL)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if l.conn, err = bus.Connect(cctx, space, bo); err != nil {
		return nil, err
	}
	// The buckets before the daemons: only sitesecd may create them.
	if err := l.conn.SetupBuckets(cctx); err != nil {
		return nil, err
	}
	if err := l.serve(); err != nil {
		return nil, err
	}

	for _, d := range o.Daemons {
		env := append(withoutBusSecrets(os.Environ()),
			daemon.EnvBus+"="+busURL,
			daemon.EnvRouter+"="+space.Router,
			"SITESEC_SUPERVISOR=sitesecd",
		)
		if o.BusCA != "" {
			env = append(env, daemon.EnvCA+"="+o.BusCA)
		}
		if passwords[d] != "" {
			env = append(env, daemon.EnvUser+"="+d, daemon.EnvCredentialFD+"=3")
		}
		p := &process{
			name: d, path: filepath.Join(o.BinDir, d), l: l, env: env, credential: passwords[d],
			args:       []string{"--root", root, "--bus-root", space.Root},
			out:        &prefixWriter{prefix: d + ": ", w: o.Out},
			restartNow: make(chan struct{}, 1),
			done:       make(chan struct{}),
		}
		if err := p.start(); err != nil {
			return nil, fmt.Errorf("start %s: %v", d, err)
		}
		l.procs[d] = p
		l.order = append(l.order, d)
		go p.run(runCtx)
	}
	if o.Config != "" {
		if err := l.loadConfig(ctx, o.Config); err != nil {
			return nil, err
		}
	}
	// The bus file is how `cli --root` finds the router: it appears once the
	// router runs its --config, so a script that waits for it finds the
	// configuration committed.
	// It holds the cli's password alone: a process that can read it can
	// be the operator, not a daemon.
	in := &busfile.Info{URL: busURL, SubjectRoot: space.Root, Router: space.Router, CA: o.BusCA, PID: os.Getpid()}
	if pw := passwords[subject.CLI]; pw != "" {
		in.Passwords = map[string]string{subject.CLI: pw}
	}
	if err := busfile.Write(root, in); err != nil {
		return nil, fmt.Errorf("write %s: %v", busfile.Path(root), err)
	}
	l.tr.Lifecycle().Str("bus", daemon.RedactURL(busURL)).Strs("daemons", l.order).Msg("running")
	return l, nil
}

func (l *Launcher) startBroker(listen string) (*broker.Server, error) {
	host, port := splitListen(listen)
	var users []broker.User
	for name, pw := range l.passwords {
		users = append(users, broker.UserFor(l.space, name, pw))
	}
	return broker.Start(broker.Options{
		StoreDir:   filepath.Join(l.o.Root, "var", "db", "nats"),
		Host:       host,
		Port:       port,
		Users:      users,
		TLSCert:    l.o.ListenCert,
		TLSKey:     l.o.ListenKey,
		ServerName: l.space.Root + "-" + l.space.Router,
	})
}

// serve registers the launcher's bus handlers and follows the daemons'
// heartbeats.
func (l *Launcher) serve() error {
	handlers := map[string]func(context.Context, proto.Message) (proto.Message, error){
		subject.VerbRestart: func(ctx context.Context, m proto.Message) (proto.Message, error) {
			return l.restart(ctx, m.(*pb.RestartRequest))
		},
		subject.VerbProcesses: func(context.Context, proto.Message) (proto.Message, error) {
			return l.processes(), nil
		},
		subject.VerbOp: func(ctx context.Context, m proto.Message) (proto.Message, error) {
			return l.op(ctx, m.(*pb.OpRequest)), nil
		},
		subject.VerbStatus: func(context.Context, proto.Message) (proto.Message, error) {
			return l.selfStatus(), nil
		},
	}
	for verb, h := range handlers {
		if _, err := l.conn.Handle(subject.Sitesecd, verb, h); err != nil {
			return fmt.Errorf("serve %s: %v", verb, err)
		}
	}
	for _, d := range l.o.Daemons {
		if _, err := l.conn.Subscribe(d, subject.VerbHealth, func(m proto.Message) {
			h := m.(*pb.Health)
			if p := l.procs[h.GetDaemon()]; p != nil {
				p.sawHealth(h)
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

var started = time.Now()

func (l *Launcher) selfStatus() *pb.ProcessStatus {
	return &pb.ProcessStatus{
		Name: subject.Sitesecd, Pid: int32(os.Getpid()), State: pb.DaemonState_DAEMON_STATE_RUNNING,
		UptimeSeconds: uint64(time.Since(started).Seconds()), BusStatus: "connected", Supervisor: "-",
	}
}

func (l *Launcher) processes() *pb.ProcessList {
	pl := &pb.ProcessList{Router: l.space.Router, Bus: l.busID, BusServerVersion: l.conn.ServerVersion()}
	pl.Processes = append(pl.Processes, l.selfStatus())
	l.srvMu.Lock()
	if l.srv != nil {
		pl.Processes = append(pl.Processes, &pb.ProcessStatus{
			Name: "nats", Pid: int32(os.Getpid()), State: pb.DaemonState_DAEMON_STATE_RUNNING,
			UptimeSeconds: uint64(time.Since(l.natsStarted).Seconds()), BusStatus: "embedded", Supervisor: subject.Sitesecd,
			Restarts: l.natsRestart, LastExitReason: l.natsLast,
		})
	}
	l.srvMu.Unlock()
	for _, d := range l.order {
		pl.Processes = append(pl.Processes, l.procs[d].status())
	}
	return pl
}

func (l *Launcher) restart(ctx context.Context, r *pb.RestartRequest) (*pb.RestartReply, error) {
	if r.GetDaemon() == "nats" {
		return l.restartNATS()
	}
	p := l.procs[r.GetDaemon()]
	if p == nil {
		return nil, fmt.Errorf("restart: no such daemon %q (one of nats, %s)", r.GetDaemon(), strings.Join(l.order, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout+2*time.Second)
	defer cancel()
	l.tr.Lifecycle().Str("daemon", p.name).Bool("immediately", r.GetImmediately()).Msg("restart requested")
	old, n, err := p.restart(ctx, r.GetImmediately())
	if err != nil {
		return nil, err
	}
	return &pb.RestartReply{Daemon: p.name, OldPid: int32(old), NewPid: int32(n)}, nil
}

// restartNATS replaces the embedded server with a new one on the same
// address and store. It answers first and restarts just after, since the
// answer travels on the server being replaced; every connection, the
// launcher's own included, reconnects by itself.
func (l *Launcher) restartNATS() (*pb.RestartReply, error) {
	l.srvMu.Lock()
	srv := l.srv
	l.srvMu.Unlock()
	if srv == nil {
		return nil, errors.New("restart: nats is an external server (" + l.busID + "); restart it where it runs")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		l.srvMu.Lock()
		defer l.srvMu.Unlock()
		addr := fmt.Sprintf("127.0.0.1:%d", l.srv.Port())
		if host, _ := splitListen(l.o.Listen); host != "" {
			addr = fmt.Sprintf("%s:%d", host, l.srv.Port())
		}
		l.tr.Lifecycle().Str("daemon", "nats").Msg("restart requested")
		l.srv.Shutdown()
		for attempt := 0; ; attempt++ {
			n, err := l.startBroker(addr)
			if err == nil {
				l.srv = n
				break
			}
			if attempt == 50 {
				l.report("nats: cannot start again: " + err.Error())
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		l.natsStarted = time.Now()
		l.natsRestart++
		l.natsLast = "restart requested"
		l.tr.Lifecycle().Str("daemon", "nats").Msg("started")
	}()
	pid := int32(os.Getpid())
	return &pb.RestartReply{Daemon: "nats", OldPid: pid, NewPid: pid}, nil
}

// op answers the operational commands the launcher owns.
func (l *Launcher) op(ctx context.Context, r *pb.OpRequest) *pb.OpReply {
	w := r.GetWords()
	switch {
	case len(w) == 3 && w[0] == "show" && w[1] == "system" && w[2] == "processes":
		return &pb.OpReply{Body: &pb.OpReply_Processes{Processes: l.processes()}}
	case len(w) >= 2 && w[0] == "restart":
		req := &pb.RestartRequest{Daemon: w[1]}
		for _, x := range w[2:] {
			switch x {
			case "immediately":
				req.Immediately = true
			case "gracefully":
			default:
				return &pb.OpReply{Error: fmt.Sprintf("syntax error, expecting gracefully or immediately: %s", x)}
			}
		}
		rep, err := l.restart(ctx, req)
		if err != nil {
			return &pb.OpReply{Error: err.Error()}
		}
		if rep.Daemon == "nats" {
			return &pb.OpReply{Lines: []string{"nats restarting (embedded in sitesecd, pid " + fmt.Sprint(rep.NewPid) + ")"}}
		}
		return &pb.OpReply{Lines: []string{fmt.Sprintf("%s started, pid %d", rep.Daemon, rep.NewPid)}}
	}
	return &pb.OpReply{Error: "syntax error: " + strings.Join(w, " ")}
}

// Bounds of the start-up commit (DESIGN.md: sitesecd either runs FILE or
// exits within a few seconds saying why).
const (
	readyWait  = 15 * time.Second // every daemon on the bus
	commitWait = 20 * time.Second // load, commit and every daemon's apply
)

// loadConfig commits the --config file once every daemon is on the bus, and
// returns when every daemon has applied it. Its error lists the file's
// errors one per line, "FILE:LINE: [edit PATH] 'STATEMENT': MESSAGE".
func (l *Launcher) loadConfig(ctx context.Context, file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	// sitesecd reads the file itself, as the user who started it, and
	// sends the text: cfgd never opens a file it is told to (issue 14
	// item 5).
	text, err := opfile.Read(abs, opfile.MaxConfig)
	if err != nil {
		if st, serr := os.Stat(abs); serr == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("--config: %s is not a regular file", abs)
		}
		return fmt.Errorf("--config: %v", err)
	}
	if err := l.waitReady(ctx, readyWait); err != nil {
		return fmt.Errorf("--config %s: not committed: %v", file, err)
	}
	ctx, cancel := context.WithTimeout(ctx, commitWait)
	defer cancel()
	session := "sitesecd-" + randomPassword()[:8]
	var rep pb.ConfigEditReply
	reqs := opfile.LoadRequests(session, "sitesecd", []string{"load", "override", abs}, abs, text, 0)
	reqs = append(reqs, &pb.ConfigEditRequest{Session: session, Words: []string{"commit", "comment", "sitesecd --config"}, User: "sitesecd"})
	for _, req := range reqs {
		rep.Reset()
		if err := l.conn.Request(ctx, subject.Cfgd, subject.VerbConfig, req, &rep); err != nil {
			return fmt.Errorf("--config %s: %s: %v", file, req.Words[0], err)
		}
		if msgs := replyErrors(file, &rep); len(msgs) > 0 {
			return fmt.Errorf("--config %s: not committed:\n  %s", file, strings.Join(msgs, "\n  "))
		}
	}
	if err := l.waitApplied(ctx, rep.GetRevision()); err != nil {
		return fmt.Errorf("--config %s: revision %d committed but %v", file, rep.GetRevision(), err)
	}
	l.tr.Lifecycle().Str("config", abs).Uint64("revision", rep.GetRevision()).Msg("configuration committed")
	return nil
}

// replyErrors words the errors of a load or commit reply, one line each.
func replyErrors(file string, rep *pb.ConfigEditReply) []string {
	var msgs []string
	for _, e := range rep.GetErrors() {
		var b strings.Builder
		f := e.GetFile()
		if f == "" {
			f = file
		}
		if e.GetLine() > 0 {
			fmt.Fprintf(&b, "%s:%d: ", f, e.GetLine())
		}
		if e.GetPath() != "" {
			b.WriteString(e.GetPath() + " ")
		}
		if e.GetStatement() != "" {
			b.WriteString("'" + e.GetStatement() + "': ")
		}
		b.WriteString(e.GetMessage())
		msgs = append(msgs, b.String())
	}
	for _, line := range rep.GetLines() {
		if strings.HasPrefix(line, "error:") {
			msgs = append(msgs, line)
		}
	}
	for _, a := range rep.GetAcks() {
		if !a.GetOk() && len(a.GetErrors()) == 0 {
			msgs = append(msgs, "error: "+a.GetDaemon()+" did not apply the configuration")
		}
	}
	return msgs
}

// waitReady waits until every daemon's current process has said on the bus
// that it runs (its Health), so that the commit does not race their start.
func (l *Launcher) waitReady(ctx context.Context, d time.Duration) error {
	return l.waitDaemons(ctx, d, "on the bus", func(s *pb.ProcessStatus, _ *pb.Health) bool {
		return s.GetBusStatus() == "connected"
	})
}

// waitApplied waits until every daemon's Health reports revision rev (or a
// later one) applied without error.
func (l *Launcher) waitApplied(ctx context.Context, rev uint64) error {
	var failed []string
	err := l.waitDaemons(ctx, 0, "applied it", func(s *pb.ProcessStatus, h *pb.Health) bool {
		if h == nil || h.GetConfigRevision() < rev {
			return false
		}
		if e := h.GetConfigError(); e != "" && h.GetConfigRevision() == rev {
			failed = append(failed, h.GetDaemon()+": "+e)
		}
		return true
	})
	if len(failed) > 0 {
		return fmt.Errorf("not applied: %s", strings.Join(failed, "; "))
	}
	return err
}

// waitDaemons polls every daemon until ok holds for all of them, for at
// most d (0: until ctx ends), and names those it still does not hold for.
func (l *Launcher) waitDaemons(ctx context.Context, d time.Duration, what string, ok func(*pb.ProcessStatus, *pb.Health) bool) error {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting []string
		for _, name := range l.order {
			p := l.procs[name]
			s := p.status()
			p.mu.Lock()
			h := p.health
			p.mu.Unlock()
			if h != nil && h.GetPid() != s.GetPid() {
				h = nil
			}
			if !ok(s, h) {
				waiting = append(waiting, fmt.Sprintf("%s (%s)", name, describe(s)))
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every daemon %s: %s", what, strings.Join(waiting, ", "))
		case <-tick.C:
		}
	}
}

// describe says in a few words where a daemon is, for a start-up error.
func describe(s *pb.ProcessStatus) string {
	state := strings.ToLower(strings.TrimPrefix(s.GetState().String(), "DAEMON_STATE_"))
	if s.GetLastExitReason() != "" {
		return state + ", last exit: " + s.GetLastExitReason()
	}
	return state + ", " + s.GetBusStatus()
}

// shutdown stops the daemons, all at once (each gets SIGTERM, and
// SIGKILL after stopTimeout), then the bus.
func (l *Launcher) shutdown() {
	if l.stopRun != nil {
		l.stopRun()
	}
	var wg sync.WaitGroup
	for _, name := range l.order {
		wg.Add(1)
		go func(p *process) {
			defer wg.Done()
			p.stop()
		}(l.procs[name])
	}
	wg.Wait()
	if l.conn != nil {
		l.conn.Close()
	}
	l.srvMu.Lock()
	if l.srv != nil {
		l.srv.Shutdown()
	}
	l.srvMu.Unlock()
	busfile.Remove(l.o.Root)
	if l.tr != nil {
		l.tr.Lifecycle().Msg("stopped")
		l.tr.Close()
	}
	if l.lock != nil {
		l.lock.Close()
	}
}

// report tells the operator about a daemon the launcher gave up on.
func (l *Launcher) report(msg string) {
	l.reportMu.Lock()
	defer l.reportMu.Unlock()
	fmt.Fprintf(l.o.Out, "sitesecd: %s\n", msg)
	l.tr.Event(trace.FlagGeneral, trace.Error).Msg(msg)
}

func (l *Launcher) trace(what, name string, pid int, reason string) {
	e := l.tr.Lifecycle().Str("daemon", name).Int("pid", pid)
	if reason != "" {
		e = e.Str("reason", reason)
	}
	e.Msg(what)
}

// lockRoot takes the root's launcher lock, or says who holds it.
func lockRoot(root string) (*os.File, error) {
	p := filepath.Join(root, "var", "run", "sitesecd.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot use root %s: %v", root, errors.Unwrap(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		f.Close()
		return nil, fmt.Errorf("another sitesecd (pid %s) is already running on root %s", strings.TrimSpace(string(b)), root)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return f, nil
}

// readCredentials reads a SITESEC_PW_<USER>=PASSWORD file (deploy/env.sh),
// which must not be readable by others.
func readCredentials(file string) (map[string]string, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("--bus-credentials: %v", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--bus-credentials: %s is mode %04o: it holds passwords, make it 0600", file, st.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--bus-credentials: %v", err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		user, isPW := strings.CutPrefix(k, "SITESEC_PW_")
		if !ok || !isPW || user == "" {
			return nil, fmt.Errorf("--bus-credentials: %s:%d: want SITESEC_PW_<USER>=PASSWORD", file, i+1)
		}
		out[strings.ToLower(user)] = strings.Trim(v, `"'`)
	}
	return out, nil
}

// stripUser is u without user and password.
func stripUser(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}

// withoutBusSecrets is env without the bus settings of the launcher's own
// environment: a daemon gets its own below.
func withoutBusSecrets(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case daemon.EnvPassword, daemon.EnvUser, daemon.EnvCredentialFD, daemon.EnvCA:
			continue
		}
		out = append(out, kv)
	}
	return out
}

func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func splitListen(s string) (string, int) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0
	}
	var port int
	fmt.Sscanf(s[i+1:], "%d", &port)
	return s[:i], port
}

// prefixWriter writes each line of a daemon's output with its name.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
