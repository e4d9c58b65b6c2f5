// Package task is strongSwan's task model in Go: a Task is one elementary
// piece of IKEv2 protocol (key exchange, NAT detection, authentication,
// CHILD SA creation, rekeying, deletion, liveness) that adds payloads to a
// message it builds and reads the payloads of a message it processes. The
// Manager owns message IDs (RFC 7296 section 2.2), retransmission (section
// 2.1), the window (section 2.3, size 1), the cached last response, and
// runs the tasks of one exchange together.
//
// A Manager belongs to one IKE SA and is driven by the SA's goroutine: it
// takes no locks.
package task

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
)

// Status is what a task step returns.
type Status int

// Statuses.
const (
	// NeedMore: the task takes part in another exchange.
	NeedMore Status = iota
	// Done: the task finished.
	Done
	// Failed: the task failed; the error says why.
	Failed
)

// Kind names a task type.
type Kind string

// Task kinds.
const (
	IKEInit     Kind = "IKE_INIT"
	NATD        Kind = "IKE_NATD"
	Auth        Kind = "IKE_AUTH"
	ChildCreate Kind = "CHILD_CREATE"
	ChildRekey  Kind = "CHILD_REKEY"
	ChildDelete Kind = "CHILD_DELETE"
	IKERekey    Kind = "IKE_REKEY"
	IKEDelete   Kind = "IKE_DELETE"
	DPD         Kind = "IKE_DPD"
)

// Task is one piece of protocol. An initiator task Builds a request and
// Processes the response; a responder task Processes the request and
// Builds the response.
type Task interface {
	Kind() Kind
	Build(m *message.Message) (Status, error)
	Process(m *message.Message) (Status, error)
}

// Retransmitter is implemented by tasks that want their own retransmission
// schedule (dead peer detection: interval and threshold, base 1).
type Retransmitter interface {
	Retransmit() (timeout time.Duration, tries int, base float64)
}

// NotifyError is a task failure that is answered with one error
// notification instead of the normal response (RFC 7296 section 2.21).
type NotifyError struct {
	Type message.NotifyType
	Data []byte
	Err  error
}

func (e *NotifyError) Error() string {
	return fmt.Sprintf("task: notify %d: %v", e.Type, e.Err)
}

func (e *NotifyError) Unwrap() error { return e.Err }

// Wire is what the Manager needs from its IKE SA.
type Wire interface {
	// Encode sets the SPIs and Initiator flag, seals (except IKE_SA_INIT)
	// and fragments m into datagrams.
	Encode(m *message.Message) ([][]byte, error)
	// Send transmits datagrams to the peer.
	Send(pkts [][]byte)
	// Responders returns the tasks that answer a request. An error with a
	// NotifyError is answered with that notification.
	Responders(req *message.Message) ([]Task, error)
}

// Failure reports a failed exchange.
type Failure struct {
	Tasks []Task
	Err   error
}

func (f *Failure) Error() string { return fmt.Sprintf("task: %s failed: %v", kinds(f.Tasks), f.Err) }
func (f *Failure) Unwrap() error { return f.Err }

func kinds(ts []Task) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += "+"
		}
		s += string(t.Kind())
	}
	return s
}

// ErrTimeout is the failure of an exchange the peer never answered.
var ErrTimeout = errors.New("task: peer did not answer")

// Defaults for retransmission: strongSwan's 4 s, factor 1.8, 5 tries.
const (
	DefaultTimeout = 4 * time.Second
	DefaultBase    = 1.8
	DefaultTries   = 5
)

// Manager runs the tasks of one IKE SA.
type Manager struct {
	wire Wire
	now  func() time.Time

	Timeout time.Duration
	Base    float64
	Tries   int

	queue [][]Task

	// The outstanding request.
	active   []Task
	exchange message.ExchangeType
	reqID    uint32
	reqPkts  [][]byte
	tries    int
	maxTries int
	base     float64
	timeout  time.Duration
	deadline time.Time

	nextID   uint32
	expectID uint32
	respPkts [][]byte
	haveResp bool

	// Stats counts exchanges for show commands.
	Stats Stats
}

// Stats are counters of one Manager.
type Stats struct {
	RequestsSent, ResponsesSent, Retransmits, RetransmitsAnswered, Dropped uint64
}

// NewManager returns a Manager sending through w, with clock now.
func NewManager(w Wire, now func() time.Time) *Manager {
	return &Manager{wire: w, now: now, Timeout: DefaultTimeout, Base: DefaultBase, Tries: DefaultTries}
}

// Queue adds the tasks of one exchange to the queue. Call Initiate to
// start it when nothing is outstanding.
func (m *Manager) Queue(exchange ...Task) {
	m.queue = append(m.queue, exchange)
}

// Busy reports whether a request is outstanding.
func (m *Manager) Busy() bool { return m.active != nil }

// Active returns the tasks of the outstanding request.
func (m *Manager) Active() []Task { return m.active }

// Queued returns the tasks waiting to be initiated.
func (m *Manager) Queued() []Task {
	var out []Task
	for _, ex := range m.queue {
		out = append(out, ex...)
	}
	return out
}

// Remove drops queued tasks for which drop is true.
func (m *Manager) Remove(drop func(Task) bool) {
	var q [][]Task
	for _, ex := range m.queue {
		var keep []Task
		for _, t := range ex {
			if !drop(t) {
				keep = append(keep, t)
			}
		}
		if len(keep) > 0 {
			q = append(q, keep)
		}
	}
	m.queue = q
}

// NextID is the message ID of our next request.
func (m *Manager) NextID() uint32 { return m.nextID }

// SetIDs sets the message ID counters (after an IKE SA rekey the new SA
// starts at 0, RFC 7296 section 2.18).
func (m *Manager) SetIDs(next, expect uint32) { m.nextID, m.expectID = next, expect }

// Deadline is when Tick must next run; zero when nothing is outstanding.
func (m *Manager) Deadline() time.Time {
	if m.active == nil {
		return time.Time{}
	}
	return m.deadline
}

// Initiate sends the next queued exchange if nothing is outstanding.
func (m *Manager) Initiate() error {
	for m.active == nil && len(m.queue) > 0 {
		ex := m.queue[0]
		m.queue = m.queue[1:]
		if err := m.start(ex); err != nil {
			return err
		}
	}
	return nil
}

func exchangeOf(ts []Task) message.ExchangeType {
	switch ts[0].Kind() {
	case IKEInit, NATD:
		return message.IKESAInit
	case Auth:
		return message.IKEAuth
	case ChildCreate, ChildRekey, IKERekey:
		return message.CreateChildSA
	}
	return message.Informational
}

// start builds and sends a request for tasks ts.
func (m *Manager) start(ts []Task) error {
	req := &message.Message{Header: message.Header{Exchange: exchangeOf(ts), MessageID: m.nextID}}
	var keep []Task
	for _, t := range ts {
		st, err := t.Build(req)
		if err != nil || st == Failed {
			return &Failure{Tasks: []Task{t}, Err: err}
		}
		if st != Done {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	pkts, err := m.wire.Encode(req)
	if err != nil {
		return &Failure{Tasks: keep, Err: err}
	}
	m.active, m.exchange, m.reqID, m.reqPkts = keep, req.Exchange, req.MessageID, pkts
	m.tries, m.timeout, m.maxTries, m.base = 0, m.Timeout, m.Tries, m.Base
	for _, t := range keep {
		if r, ok := t.(Retransmitter); ok {
			m.timeout, m.maxTries, m.base = r.Retransmit()
		}
	}
	m.deadline = m.now().Add(m.timeout)
	m.Stats.RequestsSent++
	m.wire.Send(pkts)
	return nil
}

// Tick retransmits the outstanding request when its time came (RFC 7296
// section 2.1), with exponential backoff. After the last try it fails the
// exchange with ErrTimeout.
func (m *Manager) Tick() error {
	if m.active == nil || m.now().Before(m.deadline) {
		return nil
	}
	if m.tries >= m.maxTries {
		f := &Failure{Tasks: m.active, Err: ErrTimeout}
		m.active = nil
		return f
	}
	m.tries++
	m.Stats.Retransmits++
	d := time.Duration(float64(m.timeout) * math.Pow(m.base, float64(m.tries)))
	m.deadline = m.now().Add(d)
	m.wire.Send(m.reqPkts)
	return nil
}

// Expected reports whether Receive would process msg as new: a response
// to the outstanding request, or the request with the next message ID
// (RFC 7296 section 2.3). Retransmissions, replays and strays are not.
func (m *Manager) Expected(msg *message.Message) bool {
	if msg.IsResponse() {
		return m.active != nil && msg.MessageID == m.reqID && msg.Exchange == m.exchange
	}
	return msg.MessageID == m.expectID
}

// Receive handles a decoded message of this IKE SA.
func (m *Manager) Receive(msg *message.Message) error {
	if msg.IsResponse() {
		return m.response(msg)
	}
	return m.request(msg)
}

func (m *Manager) response(msg *message.Message) error {
	// RFC 7296 section 2.3: a response that matches no outstanding
	// request is dropped.
	if m.active == nil || msg.MessageID != m.reqID || msg.Exchange != m.exchange {
		m.Stats.Dropped++
		return nil
	}
	ts := m.active
	m.active = nil
	var more []Task
	var failure *Failure
	for _, t := range ts {
		st, err := t.Process(msg)
		if err != nil || st == Failed {
			if err == nil {
				err = errors.New("failed")
			}
			// The exchange is over for every task: the first failure is
			// reported, the others still see the response.
			if failure == nil {
				failure = &Failure{Tasks: []Task{t}, Err: err}
			}
			continue
		}
		if st == NeedMore {
			more = append(more, t)
		}
	}
	// IKE_SA_INIT retried after COOKIE or INVALID_KE_PAYLOAD keeps
	// message ID 0 (RFC 7296 sections 2.6, 1.2).
	if !(msg.Exchange == message.IKESAInit && len(more) > 0 && failure == nil) {
		m.nextID++
	}
	if failure != nil {
		return failure
	}
	if len(more) > 0 {
		if err := m.start(more); err != nil {
			return err
		}
	}
	return m.Initiate()
}

func (m *Manager) request(msg *message.Message) error {
	switch {
	case m.haveResp && msg.MessageID+1 == m.expectID:
		// A retransmitted request: resend the cached response.
		m.Stats.RetransmitsAnswered++
		m.wire.Send(m.respPkts)
		return nil
	case msg.MessageID != m.expectID:
		m.Stats.Dropped++
		return nil
	}
	resp := &message.Message{Header: message.Header{Exchange: msg.Exchange, MessageID: msg.MessageID, Flags: message.FlagResponse}}
	var failure error
	ts, err := m.wire.Responders(msg)
	if err == nil {
		for _, t := range ts {
			if _, err = t.Process(msg); err != nil {
				break
			}
		}
	}
	if err == nil {
		for _, t := range ts {
			if _, err = t.Build(resp); err != nil {
				break
			}
		}
	}
	if err != nil {
		var ne *NotifyError
		if !errors.As(err, &ne) {
			ne = &NotifyError{Type: message.NotifyInvalidSyntax, Err: err}
		}
		resp.Payloads = []message.Payload{&message.Notify{NotifyType: ne.Type, Data: ne.Data}}
		failure = &Failure{Tasks: ts, Err: err}
	}
	pkts, eerr := m.wire.Encode(resp)
	if eerr != nil {
		return eerr
	}
	m.expectID++
	m.respPkts, m.haveResp = pkts, true
	m.Stats.ResponsesSent++
	m.wire.Send(pkts)
	if failure != nil {
		return failure
	}
	return m.Initiate()
}

// Reject answers a request that failed to parse after its integrity check
// with one error notification (RFC 7296 section 2.5: an unsupported
// critical payload; section 2.21: invalid syntax). Retransmissions and
// requests outside the window are dropped as usual.
func (m *Manager) Reject(h message.Header, n message.NotifyType, data []byte) error {
	if h.IsResponse() || h.MessageID != m.expectID {
		m.Stats.Dropped++
		return nil
	}
	resp := &message.Message{Header: message.Header{Exchange: h.Exchange, MessageID: h.MessageID, Flags: message.FlagResponse},
		Payloads: []message.Payload{&message.Notify{NotifyType: n, Data: data}}}
	pkts, err := m.wire.Encode(resp)
	if err != nil {
		return err
	}
	m.expectID++
	m.respPkts, m.haveResp = pkts, true
	m.Stats.ResponsesSent++
	m.wire.Send(pkts)
	return nil
}
