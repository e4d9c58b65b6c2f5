// Package broker runs the embedded NATS server that carries the sitesec bus
// when sitesecd is not pointed at an external one (DESIGN.md, "Processes").
//
// The server is nats-server used as a library, with JetStream on a file
// store under the router's root, so the committed configuration (a
// JetStream KV bucket) survives a restart of the launcher. Clients connect
// over TCP loopback, or in the same process through InProcess.
//
// Every daemon has its own user, and the permissions of each user come
// from RightsOf, which reads the ownership table subject.AccessTable: the
// bus carries SA keys, so only kmd may install SAs, only fwdd reads them,
// only kmd asks pkid to sign, and only cfgd may change the committed
// configuration (DESIGN.md, "The bus").
package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long Start waits for the server to accept
// connections.
const readyTimeout = 5 * time.Second

// responseExpiry bounds how long a server may answer a request it
// received (allow_responses); no bus request waits that long.
const responseExpiry = 2 * time.Minute

// DontListen is the Port that keeps the server off the network: clients can
// only connect in-process.
const DontListen = -1

// User is one bus account: a daemon, the cli, or a test.
type User struct {
	Name, Password string
	// Allow/Deny publish subjects (NATS wildcards). Empty Allow means ">".
	PublishAllow, PublishDeny []string
	// Allow/Deny subscribe subjects. Empty Allow means ">".
	SubscribeAllow, SubscribeDeny []string
	// AllowResponses lets the user answer the requests it received
	// (Rights.Responses).
	AllowResponses bool
}

// Options configure the embedded server.
type Options struct {
	// StoreDir is the JetStream store, e.g. <root>/var/db/nats. It is
	// created with mode 0700 if missing.
	StoreDir string
	// Host to listen on; default "127.0.0.1".
	Host string
	// Port to listen on: 0 picks a random free port, DontListen (-1) opens
	// no socket at all (in-process clients only).
	Port int
	// Users; empty means no authentication (tests only).
	Users []User
	// ServerName names the server in INFO and in JetStream; default
	// "sitesec".
	ServerName string
	// TLSCert and TLSKey are PEM files of the server's certificate and
	// key: clients must then use TLS. A server that listens beyond the
	// loopback needs them (DESIGN.md, "The bus": TLS whenever it leaves
	// the machine).
	TLSCert, TLSKey string
	// Logf, when set, receives the server's notices, warnings and errors
	// (not its debug or trace output).
	Logf func(format string, args ...any)
}

// Server is a running embedded NATS server.
type Server struct {
	ns     *server.Server
	listen bool
	once   sync.Once
}

// Start starts the server with JetStream enabled and returns once it
// accepts connections (at most 5s). A port that is taken or a store
// directory that cannot be used gives an error saying so.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("broker: no JetStream store directory")
	}
	if err := storeDir(o.StoreDir); err != nil {
		return nil, err
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.ServerName == "" {
		o.ServerName = "sitesec"
	}
	so := &server.Options{
		ServerName: o.ServerName,
		Host:       o.Host,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		// Our own logger below decides what is shown.
		NoLog: o.Logf == nil,
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey})
		if err != nil {
			return nil, fmt.Errorf("broker: TLS: %w", err)
		}
		so.TLS, so.TLSConfig, so.TLSTimeout = true, tc, 2
	} else if o.Port != DontListen && !loopback(o.Host) {
		return nil, fmt.Errorf("broker: %s is not a loopback address: a bus that leaves the machine needs TLS (a certificate and key)", o.Host)
	}
	switch {
	case o.Port == DontListen:
		so.DontListen = true
	case o.Port == 0:
		so.Port = server.RANDOM_PORT
	case o.Port > 0 && o.Port < 65536:
		so.Port = o.Port
		// nats-server does not report a listen failure to its caller (it
		// logs it as fatal), so find out first, while we can say why.
		if err := probe(o.Host, o.Port); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("broker: port %d out of range", o.Port)
	}
	for _, u := range o.Users {
		if u.Name == "" {
			return nil, errors.New("broker: user without a name")
		}
		allow := u.PublishAllow
		if len(allow) == 0 {
			allow = []string{">"}
		}
		sallow := u.SubscribeAllow
		if len(sallow) == 0 {
			sallow = []string{">"}
		}
		perms := &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: allow, Deny: u.PublishDeny},
			Subscribe: &server.SubjectPermission{Allow: sallow, Deny: u.SubscribeDeny},
		}
		if u.AllowResponses {
			perms.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: responseExpiry}
		}
		so.Users = append(so.Users, &server.User{Username: u.Name, Password: u.Password, Permissions: perms})
	}

	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	lg := &logger{logf: o.Logf}
	// Always install the logger: nats-server reports a failure to start
	// JetStream or to listen only through Fatalf, which we turn into an
	// error instead of an exit.
	ns.SetLoggerV2(lg, false, false, false)
	ns.Start()
	if err := lg.fatalErr(); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if !ns.ReadyForConnections(readyTimeout) {
		err := lg.fatalErr()
		ns.Shutdown()
		ns.WaitForShutdown()
		if err == nil {
			err = fmt.Errorf("not ready for connections after %s", readyTimeout)
		}
		return nil, fmt.Errorf("broker: %w", err)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("broker: JetStream did not start (store %s)", o.StoreDir)
	}
	return &Server{ns: ns, listen: !so.DontListen}, nil
}

// storeDir creates dir (0700) and checks that files can be written in it.
// The store holds the committed configuration, pre-shared keys included,
// so an existing dir is made 0700 too.
func storeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("broker: JetStream store: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("broker: JetStream store: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("broker: JetStream store %s is not writable: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// probe checks that host:port can be listened on.
func probe(host string, port int) error {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", hp)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err
			}
		}
		return fmt.Errorf("broker: cannot listen on %s: %w", hp, err)
	}
	return l.Close()
}

// ClientURL is the URL clients connect to, "nats://127.0.0.1:PORT"
// ("tls://..." with TLS), or "" when the server does not listen. A server
// that listens on every address is reached on 127.0.0.1.
func (s *Server) ClientURL() string {
	if !s.listen {
		return ""
	}
	u := s.ns.ClientURL()
	for _, any := range []string{"0.0.0.0", "[::]"} {
		u = strings.Replace(u, "//"+any+":", "//127.0.0.1:", 1)
	}
	return u
}

// loopback reports whether host is a loopback address or name.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Port is the port the server listens on (0 when it does not).
func (s *Server) Port() int {
	if !s.listen {
		return 0
	}
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// InProcess connects clients without a socket, for nats.InProcessServer
// (and bus.Options.InProcess).
func (s *Server) InProcess() nats.InProcessConnProvider { return s.ns }

// Shutdown closes every client connection, flushes JetStream and waits
// until the server has stopped. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}

// Version is the nats-server version, e.g. "2.15.2".
func (s *Server) Version() string { return server.VERSION }

// NumClients is the number of connected clients.
func (s *Server) NumClients() int { return s.ns.NumClients() }

// logger adapts nats-server logging to Options.Logf and keeps the first
// fatal error.
type logger struct {
	logf  func(format string, args ...any)
	mu    sync.Mutex
	fatal error
}

func (l *logger) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

func (l *logger) log(level, format string, v []any) {
	if l.logf != nil {
		l.logf("nats: "+level+format, v...)
	}
}

func (l *logger) Noticef(format string, v ...any) { l.log("", format, v) }
func (l *logger) Warnf(format string, v ...any)   { l.log("warning: ", format, v) }
func (l *logger) Errorf(format string, v ...any)  { l.log("error: ", format, v) }
func (l *logger) Debugf(string, ...any)           {}
func (l *logger) Tracef(string, ...any)           {}

func (l *logger) Fatalf(format string, v ...any) {
	l.log("fatal: ", format, v)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == nil {
		l.fatal = fmt.Errorf(format, v...)
	}
}
