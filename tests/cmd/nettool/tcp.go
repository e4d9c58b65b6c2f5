package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// serve runs a TCP echo server until killed.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("l", ":5001", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	return echo(ln)
}

func echo(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// dial connects to addr; mss > 0 sets the TCP maximum segment size
// (TCP_MAXSEG before connect, so it is also what the peer is told).
func dial(addr string, timeout time.Duration, mss int) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if mss > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d.Dial("tcp4", addr)
}

// tcpTransfer sends n random bytes to an echo server and checks that the
// same bytes come back.
func tcpTransfer(args []string) error {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	n := fs.Int("n", 1<<20, "bytes to send")
	wait := fs.Duration("w", 10*time.Second, "deadline for the whole transfer")
	mss := fs.Int("mss", 0, "TCP maximum segment size (0: the kernel's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want DEST:PORT")
	}
	c, err := dial(fs.Arg(0), *wait, *mss)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(*wait))
	data := make([]byte, *n)
	_, _ = rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, *n)
	start := time.Now()
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !bytes.Equal(got, data) {
		return errors.New("echoed bytes differ")
	}
	fmt.Printf("ok %d bytes in %s\n", *n, time.Since(start).Round(time.Millisecond))
	return nil
}

// StreamResult is what `nettool stream -json` prints.
type StreamResult struct {
	Sent       int     `json:"sent"`
	Echoed     int     `json:"echoed"`
	MaxStallMs float64 `json:"max_stall_ms"` // longest time without an echoed byte
	Error      string  `json:"error,omitempty"`
}

// stream writes a chunk every interval to an echo server for a while and
// measures the longest time no echoed byte arrived: TCP hides losses, so a
// stall is what a restart costs a TCP stream.
func stream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	dur := fs.Duration("t", 6*time.Second, "duration")
	interval := fs.Duration("i", 5*time.Millisecond, "interval between chunks")
	chunk := fs.Int("s", 1000, "bytes per chunk")
	asJSON := fs.Bool("json", false, "print a StreamResult as JSON")
	mss := fs.Int("mss", 0, "TCP maximum segment size (0: the kernel's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want DEST:PORT")
	}
	c, err := dial(fs.Arg(0), 5*time.Second, *mss)
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex
	var r StreamResult
	last := time.Now()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 64*1024)
		for {
			n, err := c.Read(buf)
			now := time.Now()
			mu.Lock()
			if n > 0 {
				if s := float64(now.Sub(last).Microseconds()) / 1000; s > r.MaxStallMs {
					r.MaxStallMs = s
				}
				last = now
				r.Echoed += n
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	data := make([]byte, *chunk)
	start := time.Now()
	tick := time.NewTicker(*interval)
	for time.Since(start) < *dur {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(data); err != nil {
			mu.Lock()
			r.Error = err.Error()
			mu.Unlock()
			break
		}
		mu.Lock()
		r.Sent += len(data)
		mu.Unlock()
		<-tick.C
	}
	tick.Stop()
	// Wait for the rest of the echo (at most 10 s).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		mu.Lock()
		all := r.Echoed >= r.Sent
		mu.Unlock()
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	if r.Echoed < r.Sent && r.Error == "" {
		r.Error = fmt.Sprintf("only %d of %d bytes echoed", r.Echoed, r.Sent)
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	fmt.Printf("sent %d echoed %d max stall %.1f ms\n", r.Sent, r.Echoed, r.MaxStallMs)
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// host is a container's whole life: set the default route (docker gives
// none on an internal network), serve TCP echo, wait for SIGTERM.
func host(args []string) error {
	fs := flag.NewFlagSet("host", flag.ContinueOnError)
	gw := fs.String("gw", "", "default gateway address")
	addr := fs.String("serve", ":5001", "TCP echo listen address (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *gw != "" {
		ip := net.ParseIP(*gw)
		if ip == nil {
			return fmt.Errorf("bad gateway %q", *gw)
		}
		if err := netlink.RouteReplace(&netlink.Route{Gw: ip}); err != nil {
			return fmt.Errorf("default route via %s (needs NET_ADMIN): %w", *gw, err)
		}
		fmt.Printf("default via %s\n", *gw)
	}
	if *addr != "" {
		ln, err := net.Listen("tcp4", *addr)
		if err != nil {
			return err
		}
		go func() { _ = echo(ln) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}
