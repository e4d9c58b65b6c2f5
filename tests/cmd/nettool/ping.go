package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// PingResult is what `nettool ping -json` prints: enough to tell how many
// probes were lost and for how long the path was down.
type PingResult struct {
	Dest     string  `json:"dest"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Dup      int     `json:"duplicates"`
	Lost     []int   `json:"lost,omitempty"` // sequence numbers without a reply
	Outages  []Span  `json:"outages,omitempty"`
	MaxRTTms float64 `json:"max_rtt_ms"`
	// LongestOutageMs is the longest run of lost probes, from the first
	// lost probe's send time to the next answered probe's send time.
	LongestOutageMs float64 `json:"longest_outage_ms"`
}

// Span is a run of lost probes, in milliseconds since the first probe.
type Span struct {
	FromMs float64 `json:"from_ms"`
	ToMs   float64 `json:"to_ms"`
	Probes int     `json:"probes"`
}

// probe is one echo request sent.
type probe struct {
	sent    time.Time
	replied bool
	rtt     time.Duration
}

// summarize turns the probes into a PingResult. Probes are in sequence
// order; start is the first send time.
func summarize(dest string, probes []probe, dup int) PingResult {
	r := PingResult{Dest: dest, Sent: len(probes), Dup: dup}
	if len(probes) == 0 {
		return r
	}
	start := probes[0].sent
	ms := func(t time.Time) float64 { return float64(t.Sub(start).Microseconds()) / 1000 }
	run := -1 // first lost probe of the current run
	closeRun := func(end time.Time, i int) {
		s := Span{FromMs: ms(probes[run].sent), ToMs: ms(end), Probes: i - run}
		r.Outages = append(r.Outages, s)
		if d := s.ToMs - s.FromMs; d > r.LongestOutageMs {
			r.LongestOutageMs = d
		}
		run = -1
	}
	for i, p := range probes {
		if p.replied {
			r.Received++
			if ms := float64(p.rtt.Microseconds()) / 1000; ms > r.MaxRTTms {
				r.MaxRTTms = ms
			}
			if run >= 0 {
				closeRun(p.sent, i)
			}
			continue
		}
		r.Lost = append(r.Lost, i)
		if run < 0 {
			run = i
		}
	}
	if run >= 0 {
		// Lost up to the end: the outage lasts at least until the last probe.
		last := probes[len(probes)-1].sent
		if len(probes) > 1 {
			last = last.Add(probes[1].sent.Sub(probes[0].sent))
		}
		closeRun(last, len(probes))
	}
	return r
}

func ping(args []string) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	interval := fs.Duration("i", time.Second, "interval between probes")
	count := fs.Int("c", 0, "number of probes (0: until -t)")
	dur := fs.Duration("t", 0, "send for this long (with -c 0)")
	wait := fs.Duration("w", time.Second, "wait this long for the last replies")
	size := fs.Int("s", 56, "payload bytes")
	asJSON := fs.Bool("json", false, "print a PingResult as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one destination")
	}
	if *count == 0 && *dur == 0 {
		*count = 3
	}
	if *size < 8 {
		*size = 8
	}
	dst, err := net.ResolveIPAddr("ip4", fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("raw ICMP socket (needs root or NET_RAW): %w", err)
	}
	defer c.Close()
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := int(binary.BigEndian.Uint16(idb[:]))

	var mu sync.Mutex
	var probes []probe
	dup := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			now := time.Now()
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			e, ok := m.Body.(*icmp.Echo)
			if !ok || e.ID != id || from.String() != dst.String() {
				continue
			}
			mu.Lock()
			// Sequence numbers wrap at 65536: the newest probe with that
			// low half is the one answered.
			for i := len(probes) - 1; i >= 0; i-- {
				if i&0xffff == e.Seq {
					if probes[i].replied {
						dup++
					} else {
						probes[i].replied = true
						probes[i].rtt = now.Sub(probes[i].sent)
					}
					break
				}
			}
			mu.Unlock()
		}
	}()

	payload := make([]byte, *size)
	start := time.Now()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		if *count > 0 && seq >= *count {
			break
		}
		if *count == 0 && time.Since(start) >= *dur {
			break
		}
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq & 0xffff, Data: payload}}
		b, _ := msg.Marshal(nil)
		mu.Lock()
		probes = append(probes, probe{sent: time.Now()})
		mu.Unlock()
		// A send error (no route while a router restarts) is a lost probe.
		_, _ = c.WriteTo(b, dst)
		<-tick.C
	}
	time.Sleep(*wait)
	c.Close()
	<-done
	mu.Lock()
	r := summarize(dst.String(), probes, dup)
	mu.Unlock()
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	fmt.Printf("%d packets transmitted, %d received, %d lost, longest outage %.1f ms\n", r.Sent, r.Received, len(r.Lost), r.LongestOutageMs)
	if r.Received == 0 {
		return fmt.Errorf("no reply from %s", r.Dest)
	}
	return nil
}
