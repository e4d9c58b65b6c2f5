package ikesa

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
)

// childDelete deletes one CHILD SA (RFC 7296 section 1.4.1).
type childDelete struct {
	sa        *SA
	child     *ChildSA
	initiator bool
}

func (t *childDelete) Kind() task.Kind { return task.ChildDelete }

func (t *childDelete) Build(m *message.Message) (task.Status, error) {
	if t.child.state == childDeleted {
		return task.Done, nil
	}
	t.sa.Stats.DeletesOut++
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: t.child.protocol(), SPISize: 4, SPIs: [][]byte{spiBytes(t.child.SPIIn)}})
	return task.NeedMore, nil
}

func (t *childDelete) Process(*message.Message) (task.Status, error) {
	t.sa.removeChild(t.child)
	return task.Done, nil
}

// ikeDelete deletes the IKE SA and with it every CHILD SA it still owns.
type ikeDelete struct {
	sa        *SA
	initiator bool
}

func (t *ikeDelete) Kind() task.Kind { return task.IKEDelete }

func (t *ikeDelete) Build(m *message.Message) (task.Status, error) {
	t.sa.State = StateDeleting
	t.sa.Stats.DeletesOut++
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolIKE})
	return task.NeedMore, nil
}

func (t *ikeDelete) Process(*message.Message) (task.Status, error) {
	t.sa.die(nil)
	return task.Done, nil
}

// Retransmit: a delete gives up sooner than other exchanges.
func (t *ikeDelete) Retransmit() (time.Duration, int, float64) {
	return task.DefaultTimeout, 2, task.DefaultBase
}

// dpd is a liveness check: an empty INFORMATIONAL request (RFC 7296
// section 2.4), sent every DPD interval and given up after the threshold.
type dpd struct {
	sa *SA
}

func (t *dpd) Kind() task.Kind                               { return task.DPD }
func (t *dpd) Build(m *message.Message) (task.Status, error) { return task.NeedMore, nil }
func (t *dpd) Process(m *message.Message) (task.Status, error) {
	t.sa.Stats.DPDAnswered++
	return task.Done, nil
}

func (t *dpd) Retransmit() (time.Duration, int, float64) {
	th := t.sa.Config.DPDThreshold
	if th <= 0 {
		th = 3
	}
	// The first request plus threshold-1 retransmissions, interval apart.
	return t.sa.Config.DPDInterval, th - 1, 1
}

// informational answers a peer's INFORMATIONAL request: deletes, liveness
// checks, notifications.
type informational struct {
	sa       *SA
	spis     [][]byte
	ikeDel   bool
	children []*ChildSA
}

func (t *informational) Kind() task.Kind { return task.IKEDelete }

func (t *informational) Process(m *message.Message) (task.Status, error) {
	sa := t.sa
	if len(m.Payloads) == 0 {
		sa.Stats.DPDReceived++
	}
	for _, p := range m.Payloads {
		d, ok := p.(*message.Delete)
		if !ok {
			continue
		}
		sa.Stats.DeletesIn++
		switch d.Protocol {
		case message.ProtocolIKE:
			t.ikeDel = true
		case message.ProtocolESP, message.ProtocolAH:
			if d.SPISize != 4 {
				return task.Failed, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: errors.New("ESP delete with bad SPI size")}
			}
			for _, s := range d.SPIs {
				spi := binary.BigEndian.Uint32(s)
				for _, c := range sa.Children {
					if c.SPIOut == spi && c.state != childDeleted && c.protocol() == d.Protocol {
						t.children = append(t.children, c)
						t.spis = append(t.spis, spiBytes(c.SPIIn))
					}
				}
			}
		}
	}
	return task.Done, nil
}

func (t *informational) Build(m *message.Message) (task.Status, error) {
	sa := t.sa
	if t.ikeDel {
		// RFC 7296 section 1.4.1: answer with an empty INFORMATIONAL.
		sa.die(nil)
		return task.Done, nil
	}
	// One Delete payload per protocol (RFC 7296 section 3.11).
	for _, proto := range []message.ProtocolID{message.ProtocolESP, message.ProtocolAH} {
		var spis [][]byte
		for i, c := range t.children {
			if c.protocol() == proto {
				spis = append(spis, t.spis[i])
			}
		}
		if len(spis) > 0 {
			m.Payloads = append(m.Payloads, &message.Delete{Protocol: proto, SPISize: 4, SPIs: spis})
		}
	}
	for _, c := range t.children {
		sa.removeChild(c)
	}
	return task.Done, nil
}
