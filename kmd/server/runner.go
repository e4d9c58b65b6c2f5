package server

import (
	"sync"
	"time"

	"github.com/sitesec/sitesec/kmd/ikesa"
)

// inboxSize bounds the work queued for one runner; beyond it datagrams
// are dropped (the peer retransmits).
const inboxSize = 256

// runner owns one IKE SA and the SAs that replace it by rekeying:
// packets, timers and commands arrive in its mailbox.
type runner struct {
	mailbox
	sas []*ikesa.SA
}

// mailbox is the work queue of one IKEv2 runner or IKEv1 tunnel: what do
// queues runs in order, one item at a time, so the SA code takes no
// locks. A goroutine runs only while there is work, and a timer (not a
// goroutine) waits for the owner's next deadline: at 10,000 tunnels a
// parked goroutine per tunnel, with its stack and a 256-slot channel, was
// most of kmd's memory (issue 15 goal 3).
type mailbox struct {
	s *Server
	// The owner's hooks: its next deadline (zero for none); tick runs
	// what is due; after runs after every item and reports false once
	// the owner is finished (its last SA died).
	deadline func() time.Time
	tick     func()
	after    func() bool

	mu      sync.Mutex
	queue   []func() // nil items are timer ticks
	running bool     // a goroutine drains the queue
	dead    bool
	timer   *time.Timer
	done    chan struct{} // closed when the owner is finished
}

func (s *Server) newMailbox() mailbox {
	return mailbox{s: s, done: make(chan struct{})}
}

// newRunner makes sa's runner. With ok, it does so only if ok, called
// under s.mu, says yes; otherwise it returns nil.
func (s *Server) newRunner(sa *ikesa.SA, ok ...func() bool) *runner {
	r := &runner{mailbox: s.newMailbox(), sas: []*ikesa.SA{sa}}
	r.deadline, r.tick, r.after = r.nextDeadline, r.tickSAs, r.prune
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ok) > 0 && !ok[0]() {
		return nil
	}
	s.runners[sa] = r
	return r
}

// do queues f; it reports false when the owner is finished, kmd stops,
// or the queue is full.
func (m *mailbox) do(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead || m.s.ctx.Err() != nil {
		return false
	}
	if len(m.queue) >= inboxSize && f != nil {
		m.s.mu.Lock()
		m.s.stats.InboxFull++
		m.s.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, f)
	if !m.running {
		m.running = true
		m.s.wg.Add(1)
		go m.run()
	}
	return true
}

// run drains the queue, then ends; the next do starts it again.
func (m *mailbox) run() {
	defer m.s.wg.Done()
	for {
		m.mu.Lock()
		if len(m.queue) == 0 || m.s.ctx.Err() != nil {
			m.running = false
			m.queue = nil // the backing array goes too
			m.mu.Unlock()
			return
		}
		f := m.queue[0]
		m.queue[0] = nil
		m.queue = m.queue[1:]
		m.mu.Unlock()
		if f != nil {
			f()
		}
		m.tick()
		if !m.after() {
			m.finish()
			return
		}
		m.arm()
	}
}

// finish ends the owner: nothing queued runs any more.
func (m *mailbox) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead, m.running, m.queue = true, false, nil
	if m.timer != nil {
		m.timer.Stop()
	}
	close(m.done)
}

// arm sets the timer to the owner's next deadline.
func (m *mailbox) arm() {
	d := m.deadline()
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.IsZero() {
		if m.timer != nil {
			m.timer.Stop()
		}
		return
	}
	wait := max(d.Sub(m.s.Now()), 0)
	if m.timer == nil {
		m.timer = time.AfterFunc(wait, func() { m.do(nil) })
		return
	}
	m.timer.Reset(wait)
}

func (r *runner) nextDeadline() time.Time {
	var d time.Time
	for _, sa := range r.sas {
		if t := sa.Deadline(); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// tickSAs runs the timers that are due.
func (r *runner) tickSAs() {
	now := r.s.Now()
	for _, sa := range append([]*ikesa.SA(nil), r.sas...) {
		if d := sa.Deadline(); !d.IsZero() && !d.After(now) {
			sa.Tick()
		}
	}
}

// prune forgets the dead SAs; false when none is left.
func (r *runner) prune() bool {
	live := r.sas[:0]
	for _, sa := range r.sas {
		if sa.State != ikesa.StateDead {
			live = append(live, sa)
		}
	}
	clear(r.sas[len(live):])
	r.sas = live
	return len(live) > 0
}
