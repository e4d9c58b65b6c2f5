package db

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/cfgd/conf"
)

func cfgWith(t *testing.T, host string) *conf.Node {
	t.Helper()
	c, err := conf.Parse("", "system { host-name "+host+"; }\nservices { ipsec-vpn { ike { policy p { pre-shared-key ascii-text secret; } } } }")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func host(c *conf.Node) string { return c.Get("system").Value("host-name") }

type clock struct {
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool { s := !t.stopped; t.stopped = true; return s }

func (c *clock) Now() time.Time { return c.now }
func (c *clock) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// advance moves the clock and fires due timers.
func (c *clock) advance(d time.Duration) {
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			t.f()
		}
	}
}

func open(t *testing.T, dir string, c *clock, onRB func(Meta, *conf.Node)) *DB {
	t.Helper()
	d, err := Open(Options{Dir: dir, Now: c.Now, AfterFunc: c.AfterFunc, OnRollback: onRB})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHistoryAndRestart(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := open(t, dir, c, nil)
	if _, m := d.Committed(); m.Revision != 0 {
		t.Fatalf("empty db revision %d", m.Revision)
	}
	for i := 1; i <= 55; i++ {
		m, err := d.Commit(cfgWith(t, fmt.Sprintf("h%d", i)), Meta{User: "admin", Client: "cli", Comment: fmt.Sprintf("c%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if m.Revision != uint64(i) {
			t.Fatalf("revision %d, want %d", m.Revision, i)
		}
		c.now = c.now.Add(time.Minute)
	}
	h := d.History()
	if len(h) != Keep || h[0].Revision != 55 || h[49].Revision != 6 || h[0].Comment != "c55" {
		t.Fatalf("history: %d entries, first %v last %v", len(h), h[0], h[len(h)-1])
	}
	r3, err := d.Rollback(3)
	if err != nil || host(r3) != "h52" {
		t.Fatalf("rollback 3: %v %v", host(r3), err)
	}
	if _, err := d.Rollback(50); err == nil {
		t.Fatal("rollback 50 succeeded")
	}
	names, _ := os.ReadDir(dir)
	revs := 0
	for _, n := range names {
		if strings.HasPrefix(n.Name(), "r") {
			revs++
		}
		fi, _ := n.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", n.Name(), fi.Mode().Perm())
		}
	}
	if revs != Keep {
		t.Errorf("%d revision files", revs)
	}
	// A restarted cfgd serves the last committed configuration and keeps
	// counting.
	d2 := open(t, dir, c, nil)
	cfg, m := d2.Committed()
	if host(cfg) != "h55" || m.Revision != 55 || m.User != "admin" {
		t.Fatalf("after restart: %s %v", host(cfg), m)
	}
	if string(first(t, cfg)) == "" {
		t.Fatal("secret lost")
	}
	if m, _ := d2.Commit(cfgWith(t, "h56"), Meta{}); m.Revision != 56 {
		t.Fatalf("revision after restart %d", m.Revision)
	}
}

func first(t *testing.T, cfg *conf.Node) string {
	return cfg.Get("services", "ipsec-vpn", "ike", "policy", "p", "pre-shared-key").Value("ascii-text")
}

// faultFS fails the n-th mutating operation and every one after it, as if
// the process died there. A failing WriteFile leaves half the data behind.
type faultFS struct {
	OS
	n, ops int
}

var errCrash = errors.New("crash")

func (f *faultFS) hit() bool { f.ops++; return f.ops >= f.n }

func (f *faultFS) WriteFile(name string, perm os.FileMode, write func(*bufio.Writer) error) error {
	if f.hit() {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := write(w); err != nil {
			return err
		}
		w.Flush()
		_ = os.WriteFile(name, b.Bytes()[:b.Len()/2], perm)
		return errCrash
	}
	return f.OS.WriteFile(name, perm, write)
}
func (f *faultFS) Rename(o, n string) error {
	if f.hit() {
		return errCrash
	}
	return f.OS.Rename(o, n)
}
func (f *faultFS) SyncDir(dir string) error {
	if f.hit() {
		return errCrash
	}
	return f.OS.SyncDir(dir)
}
func (f *faultFS) Remove(name string) error {
	if f.hit() {
		return errCrash
	}
	return f.OS.Remove(name)
}

// TestCrashDuringCommit fails each file operation of a commit in turn and
// checks that a restarted database serves either the old or the new
// configuration, whole, and keeps working.
func TestCrashDuringCommit(t *testing.T) {
	for _, confirmed := range []uint32{0, 5} {
		for n := 1; ; n++ {
			dir := t.TempDir()
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			d := open(t, dir, c, nil)
			if _, err := d.Commit(cfgWith(t, "old"), Meta{}); err != nil {
				t.Fatal(err)
			}
			ffs := &faultFS{n: n}
			d.opt.FS = ffs
			_, err := d.Commit(cfgWith(t, "new"), Meta{ConfirmMinutes: confirmed})
			crashed := ffs.ops >= n

			d2 := open(t, dir, c, nil)
			cfg, m := d2.Committed()
			switch {
			case host(cfg) == "old" && m.Revision == 1:
				if err == nil {
					t.Fatalf("op %d: commit reported success but the old configuration survived", n)
				}
			case host(cfg) == "new" && m.Revision == 2:
				if _, _, ok := d2.Pending(); ok != (confirmed > 0) {
					t.Fatalf("op %d: pending confirm %v after restart", n, ok)
				}
			default:
				t.Fatalf("op %d: restarted with %q revision %d", n, host(cfg), m.Revision)
			}
			names, _ := os.ReadDir(dir)
			for _, x := range names {
				if strings.HasSuffix(x.Name(), ".tmp") {
					t.Fatalf("op %d: temporary file %s left after Open", n, x.Name())
				}
			}
			if m2, err := d2.Commit(cfgWith(t, "next"), Meta{}); err != nil || m2.Revision != m.Revision+1 {
				t.Fatalf("op %d: commit after restart: %v %v", n, m2, err)
			}
			if !crashed {
				break // every operation has been failed once
			}
		}
	}
}

func TestCommitConfirmed(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var rolled []Meta
	d := open(t, dir, c, func(m Meta, cfg *conf.Node) {
		rolled = append(rolled, m)
		if host(cfg) != "a" {
			t.Errorf("rolled back to %q", host(cfg))
		}
	})
	d.Commit(cfgWith(t, "a"), Meta{})
	if _, err := d.Commit(cfgWith(t, "b"), Meta{ConfirmMinutes: 5}); err != nil {
		t.Fatal(err)
	}
	c.advance(4 * time.Minute)
	if cfg, _ := d.Committed(); host(cfg) != "b" || len(rolled) != 0 {
		t.Fatal("rolled back early")
	}
	c.advance(time.Minute)
	cfg, m := d.Committed()
	if host(cfg) != "a" || m.Revision != 3 || len(rolled) != 1 || m.Comment != "commit confirmed rollback" {
		t.Fatalf("after timeout: %q %v %v", host(cfg), m, rolled)
	}
	if _, _, ok := d.Pending(); ok {
		t.Fatal("still pending")
	}

	// Confirmed in time: no rollback.
	d.Commit(cfgWith(t, "c"), Meta{ConfirmMinutes: 1})
	if ok, err := d.Confirm(); !ok || err != nil {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	c.advance(2 * time.Minute)
	if cfg, _ := d.Committed(); host(cfg) != "c" {
		t.Fatal("rolled back after confirm")
	}
	if _, err := os.Stat(filepath.Join(dir, "confirm")); !os.IsNotExist(err) {
		t.Fatal("confirm file left")
	}
}

func TestCommitConfirmedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := open(t, dir, c, nil)
	d.Commit(cfgWith(t, "a"), Meta{})
	d.Commit(cfgWith(t, "b"), Meta{ConfirmMinutes: 10})

	// Restarted before the deadline: the timer is re-armed for the rest.
	c.now = c.now.Add(4 * time.Minute)
	c2 := &clock{now: c.now}
	d2 := open(t, dir, c2, nil)
	if len(c2.timers) != 1 || c2.timers[0].at.Sub(c2.now) != 6*time.Minute {
		t.Fatalf("timers %v", c2.timers)
	}
	// Restarted after it: rolled back at Open.
	c3 := &clock{now: c.now.Add(time.Hour)}
	var rolled bool
	d3 := open(t, dir, c3, func(Meta, *conf.Node) { rolled = true })
	cfg, m := d3.Committed()
	if host(cfg) != "a" || m.Revision != 3 || !rolled {
		t.Fatalf("after restart past deadline: %q %d %v", host(cfg), m.Revision, rolled)
	}
	_ = d2
}

// TestDamagedRevision: a revision file damaged from outside is skipped, the
// one before it is served, and its number is never reused.
func TestDamagedRevision(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := open(t, dir, c, nil)
	d.Commit(cfgWith(t, "a"), Meta{})
	d.Commit(cfgWith(t, "b"), Meta{})
	if err := os.WriteFile(filepath.Join(dir, name(2)), []byte("## sitesec-meta {garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := open(t, dir, c, nil)
	cfg, m := d2.Committed()
	if host(cfg) != "a" || m.Revision != 1 {
		t.Fatalf("served %q revision %d", host(cfg), m.Revision)
	}
	if m, _ := d2.Commit(cfgWith(t, "c"), Meta{}); m.Revision != 3 {
		t.Fatalf("next revision %d, want 3", m.Revision)
	}
}

// Issue 14, low: a pre-shared key typed in clear is stored in "$9$" form in
// the committed and rollback files (0600), as Junos does on commit, and
// reads back as the same key.
func TestSecretsStoredObfuscated(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := open(t, dir, c, nil)
	const psk = "Clear-Text-PSK-1234"
	cfg, err := conf.Parse("", "services { ipsec-vpn { ike { policy p { pre-shared-key ascii-text "+psk+"; } } } }")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.Commit(cfg, Meta{User: "admin"}); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := os.ReadDir(dir)
	files := 0
	for _, n := range names {
		if !strings.HasPrefix(n.Name(), "r") {
			continue
		}
		files++
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), psk) || !strings.Contains(string(b), "$9$") {
			t.Fatalf("%s holds the key in clear:\n%s", n.Name(), b)
		}
		if fi, _ := n.Info(); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", n.Name(), fi.Mode())
		}
	}
	if files < 2 {
		t.Fatalf("%d revision files", files)
	}
	d2 := open(t, dir, c, nil)
	got, _ := d2.Committed()
	p1, err1 := conf.ToPB(got)
	p2, err2 := conf.ToPB(cfg)
	if err1 != nil || err2 != nil || !proto.Equal(p1, p2) {
		t.Fatalf("reloaded configuration differs: %v %v", err1, err2)
	}
}

// TestReadableCopy: juniper.conf is the newest revision's file, byte for
// byte (a copy of the file the revision was rendered into), secrets in
// "$9$" form, replaced by each commit.
func TestReadableCopy(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := open(t, dir, c, nil)
	for i, h := range []string{"one", "two"} {
		m, err := d.Commit(cfgWith(t, h), Meta{User: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := os.ReadFile(filepath.Join(dir, name(m.Revision)))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := os.ReadFile(filepath.Join(dir, "juniper.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rev, cp) || !strings.Contains(string(cp), "host-name "+h+";") || strings.Contains(string(cp), "ascii-text secret;") {
			t.Fatalf("commit %d: juniper.conf:\n%s\nrevision file:\n%s", i+1, cp, rev)
		}
		if fi, err := os.Stat(filepath.Join(dir, "juniper.conf")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("juniper.conf: %v %v", fi.Mode(), err)
		}
	}
}
