package server

import (
	"time"

	"github.com/sitesec/sitesec/kmd/ikesa"
)

// inboxSize bounds the work queued for one runner; beyond it datagrams
// are dropped (the peer retransmits).
const inboxSize = 256

// runner is the goroutine that owns one IKE SA and the SAs that replace
// it by rekeying: packets, timers and commands arrive in its inbox.
type runner struct {
	mailbox
	sas []*ikesa.SA
}

// mailbox is the work queue of one goroutine (an IKEv2 runner or an IKEv1
// tunnel): what do queues, that goroutine runs in order.
type mailbox struct {
	s     *Server
	inbox chan func()
	done  chan struct{}
}

func (s *Server) newMailbox() mailbox {
	return mailbox{s: s, inbox: make(chan func(), inboxSize), done: make(chan struct{})}
}

func (s *Server) newRunner(sa *ikesa.SA) *runner {
	r := &runner{mailbox: s.newMailbox(), sas: []*ikesa.SA{sa}}
	s.mu.Lock()
	s.runners[sa] = r
	s.mu.Unlock()
	s.wg.Add(1)
	go r.loop()
	return r
}

// do queues f; it reports false when the goroutine is gone or full.
func (r *mailbox) do(f func()) bool {
	select {
	case <-r.done:
		return false
	default:
	}
	select {
	case r.inbox <- f:
		return true
	default:
		r.s.mu.Lock()
		r.s.stats.InboxFull++
		r.s.mu.Unlock()
		return false
	}
}

func (r *runner) deadline() time.Time {
	var d time.Time
	for _, sa := range r.sas {
		if t := sa.Deadline(); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

func (r *runner) loop() {
	defer r.s.wg.Done()
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if d := r.deadline(); !d.IsZero() {
			timer.Reset(max(d.Sub(r.s.Now()), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case f := <-r.inbox:
			f()
		case <-timer.C:
		case <-r.s.ctx.Done():
			return
		}
		now := r.s.Now()
		for _, sa := range append([]*ikesa.SA(nil), r.sas...) {
			if d := sa.Deadline(); !d.IsZero() && !d.After(now) {
				sa.Tick()
			}
		}
		live := r.sas[:0]
		for _, sa := range r.sas {
			if sa.State != ikesa.StateDead {
				live = append(live, sa)
			}
		}
		r.sas = live
		if len(live) == 0 {
			return
		}
	}
}
