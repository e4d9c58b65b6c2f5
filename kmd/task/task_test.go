package task

import (
	"errors"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// wire records what a Manager sends; messages are passed through as their
// header bytes plus the message itself.
type wire struct {
	sent       []*message.Message
	pkts       int
	responders func(*message.Message) ([]Task, error)
}

func (w *wire) Encode(m *message.Message) ([][]byte, error) {
	w.sent = append(w.sent, m)
	return [][]byte{{byte(len(w.sent))}}, nil
}
func (w *wire) Send(p [][]byte) { w.pkts += len(p) }
func (w *wire) Responders(m *message.Message) ([]Task, error) {
	if w.responders == nil {
		return nil, nil
	}
	return w.responders(m)
}

type fake struct {
	kind     Kind
	builds   int
	process  []Status
	err      error
	payloads []message.Payload
}

func (f *fake) Kind() Kind { return f.kind }
func (f *fake) Build(m *message.Message) (Status, error) {
	f.builds++
	m.Payloads = append(m.Payloads, f.payloads...)
	return NeedMore, nil
}
func (f *fake) Process(m *message.Message) (Status, error) {
	if f.err != nil {
		return Failed, f.err
	}
	s := f.process[0]
	f.process = f.process[1:]
	return s, nil
}

func resp(ex message.ExchangeType, id uint32) *message.Message {
	return &message.Message{Header: message.Header{Exchange: ex, MessageID: id, Flags: message.FlagResponse}}
}

func TestRetransmitBackoff(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	w := &wire{}
	m := NewManager(w, c.now)
	m.Queue(&fake{kind: DPD, process: []Status{Done}})
	if err := m.Initiate(); err != nil {
		t.Fatal(err)
	}
	// 4 s, then 4*1.8, 4*1.8^2, ... five retransmits, then failure.
	var gaps []time.Duration
	start := c.t
	for i := 0; i < 10; i++ {
		d := m.Deadline()
		if d.IsZero() {
			break
		}
		c.t = d
		err := m.Tick()
		gaps = append(gaps, c.t.Sub(start))
		start = c.t
		if err != nil {
			if !errors.Is(err, ErrTimeout) {
				t.Fatal(err)
			}
			break
		}
	}
	if w.pkts != 1+DefaultTries || len(gaps) != DefaultTries+1 {
		t.Fatalf("sent %d, gaps %v", w.pkts, gaps)
	}
	if gaps[0] != 4*time.Second || gaps[1] != time.Duration(4*1.8*float64(time.Second)) {
		t.Fatalf("gaps %v", gaps)
	}
	if m.Busy() {
		t.Fatal("still busy after failure")
	}
}

func TestResponseMatching(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	w := &wire{}
	m := NewManager(w, c.now)
	f := &fake{kind: ChildCreate, process: []Status{Done}}
	m.Queue(f)
	m.Queue(&fake{kind: DPD, process: []Status{Done}})
	m.Initiate()
	// Wrong ID or wrong exchange: dropped.
	m.Receive(resp(message.CreateChildSA, 5))
	m.Receive(resp(message.Informational, 0))
	if m.Stats.Dropped != 2 || !m.Busy() {
		t.Fatal("mismatched response accepted")
	}
	if err := m.Receive(resp(message.CreateChildSA, 0)); err != nil {
		t.Fatal(err)
	}
	// The next queued exchange went out with ID 1.
	if len(w.sent) != 2 || w.sent[1].MessageID != 1 || w.sent[1].Exchange != message.Informational {
		t.Fatalf("sent %d", len(w.sent))
	}
}

func TestIKESAInitRetryKeepsID(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	w := &wire{}
	m := NewManager(w, c.now)
	init := &fake{kind: IKEInit, process: []Status{NeedMore, Done}}
	m.Queue(init)
	m.Initiate()
	m.Receive(resp(message.IKESAInit, 0)) // COOKIE: again with ID 0
	if len(w.sent) != 2 || w.sent[1].MessageID != 0 {
		t.Fatal("retry did not keep message ID 0")
	}
	m.Receive(resp(message.IKESAInit, 0))
	if m.NextID() != 1 || m.Busy() {
		t.Fatalf("next %d", m.NextID())
	}
}

func TestRequests(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	w := &wire{}
	m := NewManager(w, c.now)
	var answered int
	w.responders = func(req *message.Message) ([]Task, error) {
		answered++
		if req.Exchange == message.CreateChildSA {
			return nil, &NotifyError{Type: message.NotifyNoProposalChosen, Err: errors.New("no")}
		}
		return []Task{&fake{kind: DPD, process: []Status{Done}}}, nil
	}
	req := func(ex message.ExchangeType, id uint32) *message.Message {
		return &message.Message{Header: message.Header{Exchange: ex, MessageID: id}}
	}
	if err := m.Receive(req(message.Informational, 0)); err != nil {
		t.Fatal(err)
	}
	// Retransmission: same response, no new processing.
	m.Receive(req(message.Informational, 0))
	if answered != 1 || w.pkts != 2 || m.Stats.RetransmitsAnswered != 1 {
		t.Fatalf("answered %d sent %d", answered, w.pkts)
	}
	// Outside the window: dropped.
	m.Receive(req(message.Informational, 5))
	if answered != 1 || m.Stats.Dropped != 1 {
		t.Fatal("out-of-window request processed")
	}
	// A failing responder answers with its notification.
	err := m.Receive(req(message.CreateChildSA, 1))
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v", err)
	}
	last := w.sent[len(w.sent)-1]
	if n := last.Payloads[0].(*message.Notify); n.NotifyType != message.NotifyNoProposalChosen || !last.IsResponse() {
		t.Fatalf("response %+v", last)
	}
}

func TestProcessFailure(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	m := NewManager(&wire{}, c.now)
	m.Queue(&fake{kind: Auth, err: errors.New("AUTHENTICATION_FAILED")})
	m.Initiate()
	err := m.Receive(resp(message.IKEAuth, 0))
	var f *Failure
	if !errors.As(err, &f) || f.Tasks[0].Kind() != Auth {
		t.Fatalf("err = %v", err)
	}
	// The failed exchange still used its message ID.
	if m.NextID() != 1 || m.Busy() {
		t.Fatalf("next ID %d", m.NextID())
	}
}
