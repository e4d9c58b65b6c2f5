package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/subject"
)

// Headers of requests and replies.
const (
	// HeaderError carries a handler's error in a reply with an empty body.
	HeaderError = "Sitesec-Error"
	// HeaderTimeout carries the caller's remaining time in milliseconds.
	HeaderTimeout = "Sitesec-Timeout"
	// HeaderPart marks one part of a request too big for one message:
	// "ID I N", part I (from 0) of N of request ID.
	HeaderPart = "Sitesec-Part"
)

// A request bigger than the server's maximum payload (1 MiB by default:
// cfgd's prepare round sends a 10,000-service-set candidate of several
// MiB) goes in parts of at most partSize bytes, each a request on the
// same subject with HeaderPart: the handler's side keeps the parts and
// answers each but the last with an empty reply once it has it; the last
// part gets the handler's reply to the whole. Parts go one after the
// other, and the requests of one subscription are served in order, so
// they arrive in order. With two instances of a daemon in the queue group
// the parts may go to different instances: the one that misses a part
// answers an error (sitesec runs one instance of each daemon per router).
const (
	// partHeadroom is left under the maximum payload for the headers.
	partHeadroom = 16 << 10
	// maxParts and maxPartial bound what a handler keeps of one request
	// (64 MiB); partialTTL how long it keeps an unfinished one.
	maxParts   = 256
	maxPartial = 64 << 20
	partialTTL = 30 * time.Second
)

// partial is a request being received in parts.
type partial struct {
	n, next int
	data    []byte
	started time.Time
}

// partSize is the largest request body sent in one message.
func (c *Conn) partSize() int {
	mp := int(c.NC.MaxPayload())
	if mp <= 0 {
		mp = 1 << 20
	}
	return max(mp-partHeadroom, 4<<10)
}

// Errors a Request can be tested for with errors.Is.
var (
	// ErrNoResponders: nobody serves the subject.
	ErrNoResponders = nats.ErrNoResponders
	// ErrTimeout: nobody answered in time (it also matches
	// context.DeadlineExceeded).
	ErrTimeout = nats.ErrTimeout
)

// RemoteError is the error a handler returned, as its caller sees it.
type RemoteError struct {
	// Daemon and Subject say who answered.
	Daemon, Subject string
	// Message is the handler's error text.
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Handler serves one request verb. req has the registry's request type;
// the reply must have the registry's reply type (nil means an empty one).
type Handler func(ctx context.Context, req proto.Message) (proto.Message, error)

// entry finds daemon.verb in the registry and checks its kind.
func entry(daemon, verb string, kind subject.Kind) (*subject.Entry, error) {
	e, ok := subject.Find(daemon, verb)
	if !ok {
		return nil, fmt.Errorf("bus: %s.%s is not in the subject registry", daemon, verb)
	}
	if e.Kind != kind {
		what := "a publish"
		if e.Kind == subject.Request {
			what = "a request"
		}
		return nil, fmt.Errorf("bus: %s.%s is %s subject", daemon, verb, what)
	}
	return e, nil
}

// checkType fails when m is not of type t.
func checkType(daemon, verb, role string, m proto.Message, t protoreflect.MessageType) error {
	if m == nil {
		return fmt.Errorf("bus: %s.%s: nil %s", daemon, verb, role)
	}
	if got, want := m.ProtoReflect().Descriptor().FullName(), t.Descriptor().FullName(); got != want {
		return fmt.Errorf("bus: %s.%s %s is %s, not %s", daemon, verb, role, want, got)
	}
	return nil
}

// Request sends req to <space>.<daemon>.<verb> and decodes the reply into
// rep. The deadline is ctx's, or DefaultTimeout (2s) when ctx has none.
//
// Errors: nobody serving the subject gives `bus: no kmd answers on
// sitesec.r0.kmd.op (is kmd running?)` (errors.Is ErrNoResponders); no
// answer in time gives `bus: kmd did not answer sitesec.r0.kmd.op within
// 2s` (errors.Is ErrTimeout and context.DeadlineExceeded); an error
// returned by the handler is a *RemoteError whose text is the handler's.
func (c *Conn) Request(ctx context.Context, daemon, verb string, req, rep proto.Message) error {
	e, err := entry(daemon, verb, subject.Request)
	if err != nil {
		return err
	}
	if err := checkType(daemon, verb, "request", req, e.Message); err != nil {
		return err
	}
	if err := checkType(daemon, verb, "reply", rep, e.Reply); err != nil {
		return err
	}
	subj := c.Space.Subject(daemon, verb)
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("bus: marshal %s request: %w", subj, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	budget := time.Until(dl)
	var part []string
	if size := c.partSize(); len(data) > size {
		n := (len(data) + size - 1) / size
		if n > maxParts {
			return fmt.Errorf("bus: %s request of %d bytes is more than %d parts", subj, len(data), maxParts)
		}
		id := nats.NewInbox()[len(nats.InboxPrefix):]
		for i := 0; i < n-1; i++ {
			msg := &nats.Msg{Subject: subj, Data: data[i*size : (i+1)*size], Header: nats.Header{
				HeaderTimeout: []string{strconv.FormatInt(time.Until(dl).Milliseconds(), 10)},
				HeaderPart:    []string{fmt.Sprintf("%s %d %d", id, i, n)},
			}}
			m, err := c.NC.RequestMsgWithContext(ctx, msg)
			if err != nil {
				return c.requestError(daemon, subj, budget, err)
			}
			if e := m.Header.Get(HeaderError); e != "" {
				return &RemoteError{Daemon: daemon, Subject: subj, Message: e}
			}
		}
		part = []string{fmt.Sprintf("%s %d %d", id, n-1, n)}
		data = data[(n-1)*size:]
	}
	msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{
		HeaderTimeout: []string{strconv.FormatInt(time.Until(dl).Milliseconds(), 10)},
	}}
	if part != nil {
		msg.Header[HeaderPart] = part
	}
	m, err := c.NC.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return c.requestError(daemon, subj, budget, err)
	}
	if msg := m.Header.Get(HeaderError); msg != "" {
		return &RemoteError{Daemon: daemon, Subject: subj, Message: msg}
	}
	if h := m.Header.Get(HeaderChunks); h != "" {
		// A reply too large for one message (chunk.go).
		body, err := c.fetchChunks(msg, m, h, func(r *nats.Msg) (*nats.Msg, error) {
			x, err := c.NC.RequestMsgWithContext(ctx, r)
			if err != nil {
				return nil, c.requestError(daemon, subj, budget, err)
			}
			return x, nil
		})
		if err != nil {
			return fmt.Errorf("bus: %s reply of %s: %w", e.Reply.Descriptor().FullName(), subj, err)
		}
		m.Data = body
	}
	if err := proto.Unmarshal(m.Data, rep); err != nil {
		return fmt.Errorf("bus: malformed %s reply from %s: %w", e.Reply.Descriptor().FullName(), subj, err)
	}
	return nil
}

// requestError words a failed request.
func (c *Conn) requestError(daemon, subj string, budget time.Duration, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &wrapped{fmt.Sprintf("bus: no %s answers on %s (is %s running?)", daemon, subj, daemon), ErrNoResponders}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &timeoutError{fmt.Sprintf("bus: %s did not answer %s within %s", daemon, subj, budget.Round(time.Millisecond))}
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("bus: %s: connection closed", subj)
	default:
		return fmt.Errorf("bus: %s: %w", subj, err)
	}
}

// timeoutError matches both ErrTimeout and context.DeadlineExceeded.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Unwrap() []error { return []error{ErrTimeout, context.DeadlineExceeded} }

// Publish publishes m on <space>.<daemon>.<verb>, a publish subject of the
// registry.
func (c *Conn) Publish(daemon, verb string, m proto.Message) error {
	e, err := entry(daemon, verb, subject.Publish)
	if err != nil {
		return err
	}
	if err := checkType(daemon, verb, "message", m, e.Message); err != nil {
		return err
	}
	subj := c.Space.Subject(daemon, verb)
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("bus: marshal %s: %w", subj, err)
	}
	if err := c.NC.Publish(subj, data); err != nil {
		return fmt.Errorf("bus: publish %s: %w", subj, err)
	}
	return nil
}

// Handle serves <space>.<daemon>.<verb> in the queue group daemon, so two
// instances share the load. h gets a fresh message of the registry's
// request type and returns the reply or an error; the error goes back as
// the header Sitesec-Error with an empty body. Malformed request bytes and
// a panic in h are answered as errors too (the panic's stack goes to
// Options.OnError); neither stops the process.
//
// Handle returns once the server has the subscription. Requests of one
// subscription are served one at a time, in order. The context h gets ends
// when the caller stops waiting (Sitesec-Timeout) or the Conn closes.
func (c *Conn) Handle(daemon, verb string, h Handler) (*nats.Subscription, error) {
	e, err := entry(daemon, verb, subject.Request)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("bus: %s.%s: nil handler", daemon, verb)
	}
	subj := c.Space.Subject(daemon, verb)
	sub, err := c.NC.QueueSubscribe(subj, daemon, func(m *nats.Msg) { c.serve(e, subj, m, h) })
	if err != nil {
		return nil, fmt.Errorf("bus: serve %s: %w", subj, err)
	}
	c.sync()
	return sub, nil
}

// sync waits until the server has seen what was sent so far, so that a
// subscription is in place when Handle or Subscribe returns. While the
// connection is down there is nothing to wait for: subscriptions are sent
// again on reconnect.
func (c *Conn) sync() {
	if c.NC.IsConnected() {
		_ = c.NC.FlushTimeout(c.opts.ConnectTimeout)
	}
}

func (c *Conn) serve(e *subject.Entry, subj string, m *nats.Msg, h Handler) {
	if err := c.checkCaller(e, m); err != nil {
		// No reply: the reply subject is not a caller's, and on a
		// locked-down bus it would be refused anyway.
		c.report(err)
		return
	}
	if ch := m.Header.Get(HeaderChunk); ch != "" {
		c.serveChunk(m, ch)
		return
	}
	data := m.Data
	if h := m.Header.Get(HeaderPart); h != "" {
		whole, done, err := c.addPart(m.Subject, h, m.Data)
		if err != nil || !done {
			c.reply(m, nil, err) // an empty reply: part received
			return
		}
		data = whole
	}
	req := e.Message.New().Interface()
	if err := proto.Unmarshal(data, req); err != nil {
		c.reply(m, nil, fmt.Errorf("bus: malformed %s request on %s: %v", e.Message.Descriptor().FullName(), subj, err))
		return
	}
	ctx, cancel := c.handlerContext(m)
	defer cancel()
	rep, err := c.call(ctx, subj, h, req)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The caller has given up (or is about to): its own timeout
		// message says more than a late answer would.
		return
	}
	if err == nil && rep != nil {
		err = checkType(e.Daemon, e.Verb, "reply", rep, e.Reply)
	}
	keep := chunkKeep
	if dl, ok := ctx.Deadline(); ok {
		keep = time.Until(dl)
	}
	c.replyKeep(m, rep, err, keep)
}

// addPart keeps one part ("ID I N") of a request sent in parts; done is
// true with the whole request at its last part.
func (c *Conn) addPart(subj, h string, data []byte) (whole []byte, done bool, err error) {
	var id string
	var i, n int
	if _, err := fmt.Sscanf(h, "%s %d %d", &id, &i, &n); err != nil || n < 1 || n > maxParts || i < 0 || i >= n {
		return nil, false, fmt.Errorf("bus: %s: bad %s header %q", subj, HeaderPart, h)
	}
	key := subj + " " + id
	now := time.Now()
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	for k, p := range c.parts {
		if now.Sub(p.started) > partialTTL {
			delete(c.parts, k)
		}
	}
	p := c.parts[key]
	if i == 0 {
		if c.parts == nil {
			c.parts = map[string]*partial{}
		}
		p = &partial{n: n, started: now}
		c.parts[key] = p
	}
	if p == nil || p.n != n || p.next != i {
		delete(c.parts, key)
		return nil, false, fmt.Errorf("bus: %s: part %d of %d of request %s out of order (an earlier part went elsewhere or was lost)", subj, i+1, n, id)
	}
	if len(p.data)+len(data) > maxPartial {
		delete(c.parts, key)
		return nil, false, fmt.Errorf("bus: %s: request %s is over %d bytes", subj, id, maxPartial)
	}
	p.data = append(p.data, data...)
	p.next++
	if p.next < n {
		return nil, false, nil
	}
	delete(c.parts, key)
	return p.data, true, nil
}

// checkCaller refuses a request whose reply subject is not the inbox of
// one of the subject's callers (subject.AccessTable): the server's
// permissions already keep others from sending it, and this keeps a
// caller from aiming the answer (which may carry keys, kmd.sa.sync) at
// someone else's inbox, or a JetStream consumer from delivering stored
// messages as requests. A connection without a user (a bus without
// authentication, tests) checks nothing.
func (c *Conn) checkCaller(e *subject.Entry, m *nats.Msg) error {
	if userOf(c.opts) == "" {
		return nil
	}
	if a, ok := subject.AccessOf(e.Daemon, e.Verb); ok {
		for _, from := range a.From {
			if strings.HasPrefix(m.Reply, subject.InboxPrefix(from)+".") {
				return nil
			}
		}
	}
	return fmt.Errorf("bus: %s: request with reply subject %q refused: not the inbox of a caller of %s.%s",
		m.Subject, m.Reply, e.Daemon, e.Verb)
}

// handlerContext ends with the Conn, and when the caller gives up.
func (c *Conn) handlerContext(m *nats.Msg) (context.Context, context.CancelFunc) {
	if ms, err := strconv.ParseInt(m.Header.Get(HeaderTimeout), 10, 64); err == nil && ms > 0 {
		return context.WithTimeout(c.base, time.Duration(ms)*time.Millisecond)
	}
	return context.WithCancel(c.base)
}

// call runs h, turning a panic into an error.
func (c *Conn) call(ctx context.Context, subj string, h Handler, req proto.Message) (rep proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			rep = nil
			err = fmt.Errorf("bus: handler of %s panicked: %v", subj, p)
			c.report(fmt.Errorf("%w\n%s", err, debug.Stack()))
		}
	}()
	return h(ctx, req)
}

// reply answers m with rep, or with err in the error header.
func (c *Conn) reply(m *nats.Msg, rep proto.Message, err error) {
	c.replyKeep(m, rep, err, chunkKeep)
}

// replyKeep is reply; a reply too large for one message is sent in
// chunks, kept for the caller at most keep (chunk.go).
func (c *Conn) replyKeep(m *nats.Msg, rep proto.Message, err error, keep time.Duration) {
	if m.Reply == "" {
		return
	}
	out := &nats.Msg{Subject: m.Reply}
	if err == nil && rep != nil {
		out.Data, err = proto.Marshal(rep)
		if err != nil {
			out.Data = nil
			err = fmt.Errorf("bus: marshal reply: %w", err)
		} else if len(out.Data) > c.chunkLimit() {
			c.holdReply(out, out.Data, keep)
		}
	}
	if err != nil {
		out.Header = nats.Header{HeaderError: []string{headerValue(err.Error())}}
	}
	if err := c.NC.PublishMsg(out); err != nil {
		c.report(fmt.Errorf("bus: reply on %s: %w", m.Subject, err))
	}
}

// headerValue makes s fit in one header line.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if s = strings.TrimSpace(s); s == "" {
		s = "error"
	}
	return s
}

// Subscribe delivers the messages published on <space>.<daemon>.<verb>,
// decoded as the registry's type. Malformed ones, and those with a reply
// subject (no event has one), are dropped and counted (Dropped). Every subscriber gets every message (no queue group). A panic
// in h is recovered and reported to Options.OnError.
func (c *Conn) Subscribe(daemon, verb string, h func(m proto.Message)) (*nats.Subscription, error) {
	e, err := entry(daemon, verb, subject.Publish)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("bus: %s.%s: nil handler", daemon, verb)
	}
	subj := c.Space.Subject(daemon, verb)
	sub, err := c.NC.Subscribe(subj, func(m *nats.Msg) {
		if m.Reply != "" {
			// An event has no reply subject: this is a request, or a
			// JetStream consumer delivering stored messages here.
			c.dropped.Add(1)
			return
		}
		msg := e.Message.New().Interface()
		if err := proto.Unmarshal(m.Data, msg); err != nil {
			c.dropped.Add(1)
			return
		}
		defer func() {
			if p := recover(); p != nil {
				c.report(fmt.Errorf("bus: subscriber of %s panicked: %v\n%s", subj, p, debug.Stack()))
			}
		}()
		h(msg)
	})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subj, err)
	}
	c.sync()
	return sub, nil
}

// Call is Request with the reply allocated for you:
//
//	rep, err := bus.Call[*pb.OpReply](ctx, c, subject.Kmd, subject.VerbOp, req)
func Call[Rep proto.Message](ctx context.Context, c *Conn, daemon, verb string, req proto.Message) (Rep, error) {
	var zero Rep
	e, err := entry(daemon, verb, subject.Request)
	if err != nil {
		return zero, err
	}
	rep, ok := e.Reply.New().Interface().(Rep)
	if !ok {
		return zero, fmt.Errorf("bus: %s.%s reply is %s, not %T", daemon, verb, e.Reply.Descriptor().FullName(), zero)
	}
	if err := c.Request(ctx, daemon, verb, req, rep); err != nil {
		return zero, err
	}
	return rep, nil
}

// Serve is Handle with typed request and reply; it fails at once when Req
// or Rep is not what the registry says.
//
//	bus.Serve(c, subject.Fwdd, subject.VerbSAInstall, func(ctx context.Context, r *pb.SAInstall) (*pb.SAInstallReply, error) { ... })
func Serve[Req, Rep proto.Message](c *Conn, daemon, verb string, h func(ctx context.Context, req Req) (Rep, error)) (*nats.Subscription, error) {
	e, err := entry(daemon, verb, subject.Request)
	if err != nil {
		return nil, err
	}
	if _, ok := e.Message.New().Interface().(Req); !ok {
		var r Req
		return nil, fmt.Errorf("bus: %s.%s request is %s, not %T", daemon, verb, e.Message.Descriptor().FullName(), r)
	}
	if _, ok := e.Reply.New().Interface().(Rep); !ok {
		var r Rep
		return nil, fmt.Errorf("bus: %s.%s reply is %s, not %T", daemon, verb, e.Reply.Descriptor().FullName(), r)
	}
	return c.Handle(daemon, verb, func(ctx context.Context, req proto.Message) (proto.Message, error) {
		rep, err := h(ctx, req.(Req))
		if err != nil {
			return nil, err
		}
		return rep, nil
	})
}

// Listen is Subscribe with a typed message.
func Listen[M proto.Message](c *Conn, daemon, verb string, h func(m M)) (*nats.Subscription, error) {
	e, err := entry(daemon, verb, subject.Publish)
	if err != nil {
		return nil, err
	}
	if _, ok := e.Message.New().Interface().(M); !ok {
		var m M
		return nil, fmt.Errorf("bus: %s.%s carries %s, not %T", daemon, verb, e.Message.Descriptor().FullName(), m)
	}
	return c.Subscribe(daemon, verb, func(m proto.Message) { h(m.(M)) })
}
