// Package bus is the sitesec daemons' typed view of NATS (DESIGN.md, "The
// bus"): protobuf request/reply and publish/subscribe on the subjects of
// proto/subject, and the committed configuration in a JetStream KV bucket.
//
// A Conn belongs to one router's Space. Every call names a daemon and a
// verb; the subject is <root>.<router>.<daemon>.<verb> and the message
// types come from subject.Registry, so a handler always gets the request
// type the registry promises and a caller cannot send the wrong one.
//
//	c, err := bus.Connect(ctx, space, bus.Options{URL: url, User: "kmd", Password: pw, Name: "kmd"})
//	rep, err := bus.Call[*pb.SAInstallReply](ctx, c, subject.Fwdd, subject.VerbSAInstall, install)
//
// On the wire a request is the marshalled request message, with the
// caller's remaining time in the header Sitesec-Timeout (milliseconds) so
// the handler's context ends when the caller gives up. A reply is the
// marshalled reply message, or an empty body with the header Sitesec-Error
// carrying the handler's error, which Request returns as a *RemoteError.
// Handlers of one verb form a NATS queue group named after the daemon, so
// several instances share the load.
//
// The connection reconnects forever, with a backoff that doubles from
// Options.ReconnectWait to Options.MaxReconnectWait; subscriptions and
// WatchConfig carry on after a reconnect.
//
// Keys ride the bus (SAInstall), so nothing here logs message contents.
package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sitesec/sitesec/proto/subject"
)

// Defaults of Options and Request.
const (
	DefaultConnectTimeout   = 2 * time.Second
	DefaultReconnectWait    = 100 * time.Millisecond
	DefaultMaxReconnectWait = 2 * time.Second
	// DefaultTimeout bounds a Request whose context has no deadline.
	DefaultTimeout = 2 * time.Second
	// kvTimeout bounds a KV operation whose context has no deadline.
	kvTimeout = 5 * time.Second
)

// Options say how to reach the bus.
type Options struct {
	// URL is nats://host:port; leave it empty when InProcess is set.
	URL string
	// InProcess connects to an embedded server without a socket
	// (broker.Server.InProcess).
	InProcess nats.InProcessConnProvider
	// User and Password authenticate the daemon (broker.User).
	User, Password string
	// Name is the connection name the server shows, e.g. "kmd".
	Name string
	// CAFile is a PEM file of the CA that signed the server's certificate:
	// the connection then requires TLS and verifies the server (its name
	// or address in the URL) against it. A bus that leaves the machine
	// uses it (DESIGN.md, "The bus").
	CAFile string
	// Daemon is whose configuration secrets GetConfig and WatchConfig
	// join in (pre-shared keys for kmd, ...); default User. Only that
	// daemon's user may read them (broker.RightsOf).
	Daemon string
	// ConnectTimeout bounds the first connection; default 2s.
	ConnectTimeout time.Duration
	// Reconnect forever with backoff from ReconnectWait (default 100ms)
	// doubling to MaxReconnectWait (default 2s), with jitter.
	ReconnectWait, MaxReconnectWait time.Duration
	// OnStatus is called with false when the connection drops and with
	// true when it is back.
	OnStatus func(connected bool)
	// OnError, when set, receives errors that have no caller to return
	// to: permission violations reported by the server, slow consumers,
	// panics in handlers (with their stack), replies that could not be
	// sent. Message contents are never included.
	OnError func(err error)
}

// Conn is a connection to one router's space on the bus.
type Conn struct {
	// NC is the underlying connection, for what this package does not
	// wrap (bus introspection taps, for example).
	NC    *nats.Conn
	Space subject.Space

	opts    Options
	js      jetstream.JetStream
	dropped atomic.Uint64
	// base is the parent of handler contexts; Close cancels it.
	base   context.Context
	cancel context.CancelFunc
	// pend holds chunked messages (chunk.go); maxChunk, when set (tests),
	// replaces the server's max_payload as the chunk size.
	pend     pending
	maxChunk int

	mu sync.Mutex
	// reconnected is closed (and replaced) at every reconnect, so that
	// watchers know to start again.
	reconnected chan struct{}
	// closed is closed when the connection is closed for good.
	closed chan struct{}
	// kvs holds the handles of the buckets used so far, by name (kvOf).
	kvs sync.Map

	// parts holds the requests being received in parts, by subject and
	// id (message.go, Request).
	partsMu sync.Mutex
	parts   map[string]*partial
}

// Connect connects to the bus, once: a daemon that cannot reach its bus
// says so and exits. Errors are one line: a server that cannot be reached
// gives `bus: cannot reach nats://127.0.0.1:4222: connection refused` (or
// `...: no answer within 2s`), bad credentials `bus: nats://127.0.0.1:4222
// refused user "kmd": authorization violation`. A password in the URL is
// never shown. ctx bounds the first connection together with
// Options.ConnectTimeout; after that the connection reconnects by itself.
func Connect(ctx context.Context, space subject.Space, o Options) (*Conn, error) {
	if _, err := subject.New(space.Root, space.Router); err != nil || space.Root == "" || space.Router == "" {
		return nil, fmt.Errorf("bus: bad space %q.%q", space.Root, space.Router)
	}
	if o.URL == "" && o.InProcess == nil {
		return nil, errors.New("bus: no server URL")
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	if o.MaxReconnectWait <= 0 {
		o.MaxReconnectWait = DefaultMaxReconnectWait
	}
	if o.MaxReconnectWait < o.ReconnectWait {
		o.MaxReconnectWait = o.ReconnectWait
	}
	timeout := o.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: connect to %s: %w", where(o), err)
	}

	c := &Conn{Space: space, opts: o, reconnected: make(chan struct{}), closed: make(chan struct{})}
	c.base, c.cancel = context.WithCancel(context.Background())
	d := &dialer{d: net.Dialer{Timeout: timeout}}
	nopts := []nats.Option{
		nats.Name(o.Name),
		// Replies to an authenticated user go to an inbox only that user
		// may read (broker.RightsOf).
		nats.CustomInboxPrefix(inboxPrefix(userOf(o))),
		nats.Timeout(timeout),
		nats.SetCustomDialer(d),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return backoff(attempts, o.ReconnectWait, o.MaxReconnectWait, rand.Int64N)
		}),
		// Notice a dead server within seconds, not minutes.
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			if o.OnStatus != nil {
				o.OnStatus(false)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			c.mu.Lock()
			close(c.reconnected)
			c.reconnected = make(chan struct{})
			c.mu.Unlock()
			if o.OnStatus != nil {
				o.OnStatus(true)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				err = fmt.Errorf("bus: %s: %w", sub.Subject, err)
			} else {
				err = fmt.Errorf("bus: %w", err)
			}
			c.report(err)
		}),
	}
	if o.User != "" {
		nopts = append(nopts, nats.UserInfo(o.User, o.Password))
	}
	if o.InProcess != nil {
		nopts = append(nopts, nats.InProcessServer(o.InProcess))
	}
	if o.CAFile != "" {
		if _, err := os.Stat(o.CAFile); err != nil {
			c.cancel()
			return nil, fmt.Errorf("bus: CA file: %w", err)
		}
		nopts = append(nopts, nats.RootCAs(o.CAFile))
	}
	nc, err := nats.Connect(o.URL, nopts...)
	if err != nil {
		c.cancel()
		return nil, connectError(o, err, d.lastErr(), timeout)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.cancel()
		return nil, fmt.Errorf("bus: %w", err)
	}
	c.NC, c.js = nc, js
	return c, nil
}

// where names the server in messages, without a password.
func where(o Options) string {
	if o.URL == "" {
		return "the in-process bus"
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return o.URL
	}
	return u.Redacted()
}

// connectError turns what nats.Connect returned into one line.
func connectError(o Options, err, dialErr error, timeout time.Duration) error {
	for _, auth := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked} {
		if errors.Is(err, auth) {
			return &wrapped{fmt.Sprintf("bus: %s refused user %q: %s", where(o), o.User, strings.TrimPrefix(auth.Error(), "nats: ")), err}
		}
	}
	reason := err
	if dialErr != nil {
		// nats.Connect hides why the dial failed ("no servers
		// available"); our dialer kept it.
		reason = dialErr
	}
	return &wrapped{fmt.Sprintf("bus: cannot reach %s: %s", where(o), cause(reason, timeout)), err}
}

// cause is the innermost useful text of a network error: "connection
// refused" rather than "dial tcp 127.0.0.1:4222: connect: connection
// refused".
func cause(err error, timeout time.Duration) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, nats.ErrTimeout) {
		return "no answer within " + timeout.Round(time.Millisecond).String()
	}
	return strings.TrimPrefix(err.Error(), "nats: ")
}

// dialer remembers the last dial error, which nats.Connect does not
// return.
type dialer struct {
	d   net.Dialer
	mu  sync.Mutex
	err error
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.d.Dial(network, address)
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
	return c, err
}

func (d *dialer) lastErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// backoff is the delay before reconnect attempt n (from 1): wait doubled
// n-1 times, at most max, then spread by ±20% with rnd so that daemons
// that lost the same server do not come back in step.
func backoff(n int, wait, max time.Duration, rnd func(int64) int64) time.Duration {
	d := wait
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	spread := int64(d) * 2 / 5
	if spread <= 0 {
		return d
	}
	return d - d/5 + time.Duration(rnd(spread))
}

// Close closes the connection and cancels the contexts of running
// handlers.
func (c *Conn) Close() {
	c.cancel()
	c.NC.Close()
}

// Reconnects counts the reconnections since Connect.
func (c *Conn) Reconnects() uint64 { return c.NC.Stats().Reconnects }

// Connected reports whether the connection is up right now.
func (c *Conn) Connected() bool { return c.NC.IsConnected() }

// ServerVersion is the version of the server connected to.
func (c *Conn) ServerVersion() string { return c.NC.ConnectedServerVersion() }

// Dropped counts the messages thrown away because they could not be
// decoded: malformed events, and malformed configuration snapshots seen by
// WatchConfig.
func (c *Conn) Dropped() uint64 { return c.dropped.Load() }

// reconnectSignal returns a channel closed at the next reconnect.
func (c *Conn) reconnectSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnected
}

func (c *Conn) report(err error) {
	if c.opts.OnError != nil {
		c.opts.OnError(err)
	}
}

// wrapped is an error with its own text that still matches what it wraps
// with errors.Is.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// inboxPrefix is "_INBOX.<user>" for an authenticated connection (see
// broker.InboxPrefix) and NATS's default otherwise.
func inboxPrefix(user string) string {
	if user == "" {
		return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	return "_INBOX." + user
}

// userOf is the user a connection authenticates as: Options.User, or the
// user of a nats://user:password@host URL.
func userOf(o Options) string {
	if o.User != "" {
		return o.User
	}
	if u, err := url.Parse(o.URL); err == nil && u.User != nil {
		return u.User.Username()
	}
	return ""
}
