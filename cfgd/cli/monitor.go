package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/redact"
	"github.com/sitesec/sitesec/proto/subject"
)

// monitorBus is `monitor bus [PATTERN] [count N] [duration SECONDS]`: it
// taps every message on PATTERN (default: all of this router) and prints
// one JSON object a line, decoded through the subject registry, with its
// time and with secret fields redacted. The requests that carry SA keys
// (fwdd.sa.*) are not delivered to the cli at all.
//
// Like Junos monitor commands it runs until interrupted, or until count
// messages or duration have passed.
func (s *Shell) monitorBus(ctx context.Context, args []string) error {
	pattern := s.Conn.Space.All()
	count, dur := 0, time.Duration(0)
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "count", "duration":
			if i+1 >= len(args) {
				return fmt.Errorf("syntax error, expecting <number> after %s", args[i])
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 {
				return fmt.Errorf("invalid %s: %s", args[i], args[i+1])
			}
			if args[i] == "count" {
				count = n
			} else {
				dur = time.Duration(n) * time.Second
			}
			i++
		default:
			pattern = args[i]
		}
	}
	if dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	t := newTap()
	msgs := make(chan *nats.Msg, 1024)
	sub, err := s.Conn.NC.ChanSubscribe(pattern, msgs)
	if err != nil {
		return fmt.Errorf("monitor bus %s: %v", pattern, err)
	}
	defer sub.Unsubscribe()
	// Replies go to the asker's own inbox, which only the asker may read
	// (broker.RightsOf); on a bus without permissions, give
	// "_INBOX.>" as the pattern to see them decoded.
	if err := s.Conn.NC.Flush(); err != nil {
		return err
	}
	seen := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			line, ok := t.decode(m, time.Now())
			if !ok {
				continue
			}
			fmt.Fprintln(s.Out, line)
			seen++
			if count > 0 && seen >= count {
				return nil
			}
		}
	}
}

// tap remembers which reply type each pending request expects.
type tap struct {
	mu      sync.Mutex
	replies map[string]protoreflect.MessageType
}

func newTap() *tap { return &tap{replies: map[string]protoreflect.MessageType{}} }

type tapLine struct {
	Time    string          `json:"time"`
	Subject string          `json:"subject"`
	Reply   string          `json:"reply,omitempty"`
	Type    string          `json:"type,omitempty"`
	Error   string          `json:"error,omitempty"`
	Size    int             `json:"size"`
	Message json.RawMessage `json:"message,omitempty"`
}

// decode renders one message; ok is false for inbox traffic that answers
// nothing we saw asked.
func (t *tap) decode(m *nats.Msg, now time.Time) (string, bool) {
	l := tapLine{Time: now.UTC().Format(time.RFC3339Nano), Subject: m.Subject, Reply: m.Reply, Size: len(m.Data)}
	var typ protoreflect.MessageType
	if e, ok := subject.Lookup(m.Subject); ok {
		typ = e.Message
		if e.Kind == subject.Request && m.Reply != "" {
			t.mu.Lock()
			t.replies[m.Reply] = e.Reply
			t.mu.Unlock()
		}
	} else {
		t.mu.Lock()
		typ = t.replies[m.Subject]
		delete(t.replies, m.Subject)
		t.mu.Unlock()
		if typ == nil {
			if len(m.Subject) > 7 && m.Subject[:7] == "_INBOX." {
				return "", false
			}
		}
	}
	if m.Header != nil {
		l.Error = m.Header.Get("Sitesec-Error")
	}
	if typ != nil {
		l.Type = string(typ.Descriptor().FullName())
		if len(m.Data) > 0 {
			msg := typ.New().Interface()
			if err := proto.Unmarshal(m.Data, msg); err != nil {
				l.Error = "undecodable: " + err.Error()
			} else {
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(redact.Clone(msg))
				if err == nil {
					l.Message = b
				}
			}
		}
	}
	b, _ := json.Marshal(l)
	return string(b), true
}
