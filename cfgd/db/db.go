// Package db is cfgd's commit database: the committed configuration, its
// rollback history (rollback 0 to 49), commit confirmed with automatic
// rollback, and crash safety.
//
// Files, in <root>/var/db/config/ (directory 0700, files 0600 because
// configurations hold pre-shared keys):
//
//	r0000000017.conf  committed revision 17: a "## sitesec-meta {json}"
//	                  header line, a "## Last commit" line, then the
//	                  configuration in curly-brace syntax. Written once, never
//	                  changed: temporary file, fsync, rename, fsync of the
//	                  directory. The rename is the commit point.
//	juniper.conf      a copy of the newest revision for people used to
//	                  Junos's /config; never read back, so replaced by
//	                  rename without fsync.
//	confirm           a pending `commit confirmed`: the revision and the
//	                  deadline. Written before the revision it names, so a
//	                  crash never leaves an unconfirmed commit without its
//	                  rollback.
//
// The newest r*.conf is the committed configuration; rollback N is the
// N-th newest. Revisions are monotonic across restarts because the next
// one is always the newest file's plus one. Leftover temporary files from
// a crash are removed at Open.
package db

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sitesec/sitesec/cfgd/conf"
)

// Keep is how many revisions are kept: rollback 0 to 49, as on Junos.
const Keep = 50

// Meta describes one committed revision.
type Meta struct {
	Revision       uint64    `json:"revision"`
	Time           time.Time `json:"time"`
	User           string    `json:"user,omitempty"`
	Client         string    `json:"client,omitempty"`
	Comment        string    `json:"comment,omitempty"`
	ConfirmMinutes uint32    `json:"confirm_minutes,omitempty"`
}

// Timer is the part of *time.Timer the database uses.
type Timer interface{ Stop() bool }

// Options configure Open. Zero values take the real clock, file system
// and timers.
type Options struct {
	Dir       string
	FS        FS
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) Timer
	// OnRollback is called (without the database lock) after a commit
	// confirmed was rolled back automatically, with the new revision.
	OnRollback func(Meta, *conf.Node)
}

// DB is the commit database. Its methods are safe for concurrent use.
type DB struct {
	opt       Options
	mu        sync.Mutex
	committed *conf.Node
	meta      Meta
	hist      []Meta // newest first
	last      uint64 // highest revision on disk, readable or not
	pending   *pending
	timer     Timer
}

type pending struct {
	Revision uint64    `json:"revision"`
	Deadline time.Time `json:"deadline"`
}

// Open reads the database in opt.Dir, creating the directory if needed.
// A commit confirmed that was pending when the process stopped is rolled
// back if its deadline has passed, or re-armed for the time left.
func Open(opt Options) (*DB, error) {
	if opt.FS == nil {
		opt.FS = OS{}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.AfterFunc == nil {
		opt.AfterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	if err := opt.FS.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	d := &DB{opt: opt, committed: conf.New()}
	names, err := opt.FS.ReadDir(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	var revs []uint64
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			_ = opt.FS.Remove(filepath.Join(opt.Dir, n))
			continue
		}
		if r, ok := parseName(n); ok {
			revs = append(revs, r)
		}
	}
	slices.Sort(revs)
	slices.Reverse(revs)
	if len(revs) > 0 {
		d.last = revs[0]
	}
	var loadErr error
	for _, r := range revs {
		m, cfg, err := d.read(r)
		if err != nil {
			// A revision file is written whole before its rename, so this
			// is damage from outside; skip it and say so.
			loadErr = errors.Join(loadErr, err)
			continue
		}
		if len(d.hist) == 0 {
			d.committed, d.meta = cfg, m
		}
		d.hist = append(d.hist, m)
	}
	if len(d.hist) == 0 && loadErr != nil {
		return nil, loadErr
	}
	if b, err := opt.FS.ReadFile(filepath.Join(opt.Dir, "confirm")); err == nil {
		var p pending
		if json.Unmarshal(b, &p) == nil && p.Revision == d.meta.Revision && p.Revision != 0 {
			d.pending = &p
		} else {
			_ = opt.FS.Remove(filepath.Join(opt.Dir, "confirm"))
		}
	}
	if d.pending != nil {
		left := d.pending.Deadline.Sub(opt.Now())
		if left <= 0 {
			m, cfg, err := d.autoRollback()
			if err != nil {
				return nil, err
			}
			if opt.OnRollback != nil {
				opt.OnRollback(m, cfg)
			}
		} else {
			d.timer = opt.AfterFunc(left, d.expire)
		}
	}
	return d, nil
}

func name(rev uint64) string { return fmt.Sprintf("r%010d.conf", rev) }

func parseName(n string) (uint64, bool) {
	if !strings.HasPrefix(n, "r") || !strings.HasSuffix(n, ".conf") {
		return 0, false
	}
	r, err := strconv.ParseUint(n[1:len(n)-5], 10, 64)
	return r, err == nil && r > 0
}

const metaPrefix = "## sitesec-meta "

func (d *DB) read(rev uint64) (Meta, *conf.Node, error) {
	path := filepath.Join(d.opt.Dir, name(rev))
	b, err := d.opt.FS.ReadFile(path)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("db: %w", err)
	}
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	var m Meta
	if !bytes.HasPrefix(first, []byte(metaPrefix)) || json.Unmarshal(first[len(metaPrefix):], &m) != nil || m.Revision != rev {
		return Meta{}, nil, fmt.Errorf("db: %s: bad header", path)
	}
	// Drop the "## Last commit" line so it does not become a comment.
	if l, r, ok := bytes.Cut(rest, []byte("\n")); ok && bytes.HasPrefix(l, []byte("## Last commit")) {
		rest = r
	}
	cfg, err := conf.Parse(path, string(rest))
	if err != nil {
		return Meta{}, nil, fmt.Errorf("db: %w", err)
	}
	return m, cfg, nil
}

// Committed returns a copy of the committed configuration and its meta.
func (d *DB) Committed() (*conf.Node, Meta) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.committed.Clone(), d.meta
}

// Meta returns the committed revision's metadata (Committed without the
// copy of the configuration).
func (d *DB) Meta() Meta {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}

// View returns the committed configuration itself, not a copy: the caller
// must not modify it, nor look it up (Get builds indexes) while another
// goroutine may. A commit replaces the configuration rather than
// changing it, so a view stays as it was. Copying a 10,000-service-set
// configuration costs a sizeable part of a commit (issue 15 goal 5).
func (d *DB) View() (*conf.Node, Meta) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.committed, d.meta
}

// History returns the kept revisions, newest (rollback 0) first.
func (d *DB) History() []Meta {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.hist)
}

// Rollback returns a copy of the configuration of rollback n (0 is the
// committed one).
func (d *DB) Rollback(n int) (*conf.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n < 0 || n >= len(d.hist) {
		if n == 0 {
			return conf.New(), nil
		}
		return nil, fmt.Errorf("Cannot rollback, file not found")
	}
	if n == 0 {
		return d.committed.Clone(), nil
	}
	_, cfg, err := d.read(d.hist[n].Revision)
	return cfg, err
}

// Pending reports a commit confirmed waiting for confirmation.
func (d *DB) Pending() (rev uint64, deadline time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		return 0, time.Time{}, false
	}
	return d.pending.Revision, d.pending.Deadline, true
}

// Commit durably stores cfg as the next revision and makes it the
// committed configuration. m supplies user, client, comment and
// ConfirmMinutes; the revision and time are filled in. When Commit returns
// an error the committed configuration is unchanged, also on disk. A
// pending commit confirmed is confirmed by any commit.
func (d *DB) Commit(cfg *conf.Node, m Meta) (Meta, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commit(cfg, m, false)
}

// CommitOwned is Commit keeping cfg itself, not a copy, as the committed
// configuration: the caller must not change cfg afterwards (cfgd's
// session copies its candidate before its next change). Copying a
// 10,000-service-set configuration was a quarter of a commit (issue 15
// goal 5).
func (d *DB) CommitOwned(cfg *conf.Node, m Meta) (Meta, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commit(cfg, m, true)
}

func (d *DB) commit(cfg *conf.Node, m Meta, owned bool) (Meta, error) {
	m.Revision = max(d.meta.Revision, d.last) + 1
	d.last = m.Revision
	m.Time = d.opt.Now().UTC().Truncate(time.Second)
	hdr, err := json.Marshal(m)
	if err != nil {
		return Meta{}, fmt.Errorf("db: %w", err)
	}
	render := func(w *bufio.Writer) error {
		w.WriteString(metaPrefix + string(hdr) + "\n")
		fmt.Fprintf(w, "## Last commit: %s by %s\n", m.Time.Format("2006-01-02 15:04:05 MST"), m.User)
		// Secrets typed in clear are stored in Junos "$9$" form, as Junos
		// does on commit (issue 14, low); reading the file back decodes them.
		cfg.WriteMasked(w)
		return nil // w's error, if any, is Flush's
	}
	fs, dir := d.opt.FS, d.opt.Dir

	confirmPath := filepath.Join(dir, "confirm")
	var p *pending
	if m.ConfirmMinutes > 0 {
		p = &pending{Revision: m.Revision, Deadline: m.Time.Add(time.Duration(m.ConfirmMinutes) * time.Minute)}
		pb, _ := json.Marshal(p)
		if err := atomicWrite(fs, dir, "confirm", func(w *bufio.Writer) error { _, err := w.Write(pb); return err }); err != nil {
			return Meta{}, fmt.Errorf("db: %w", err)
		}
	}
	if err := atomicWrite(fs, dir, name(m.Revision), render); err != nil {
		return Meta{}, fmt.Errorf("db: %w", err)
	}
	// Committed. What follows is tidying: a failure leaves a database that
	// Open reads correctly.
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if p == nil && d.pending != nil {
		if fs.Remove(confirmPath) == nil {
			_ = fs.SyncDir(dir)
		}
	}
	d.pending = p
	if p != nil {
		d.timer = d.opt.AfterFunc(p.Deadline.Sub(d.opt.Now()), d.expire)
	}
	if !owned {
		cfg = cfg.Clone()
	}
	d.committed = cfg
	d.meta = m
	d.hist = append([]Meta{m}, d.hist...)
	for len(d.hist) > Keep {
		old := d.hist[len(d.hist)-1]
		d.hist = d.hist[:len(d.hist)-1]
		_ = fs.Remove(filepath.Join(dir, name(old.Revision)))
	}
	// The readable copy is never read back: replaced by rename (a reader
	// sees the old or the new whole) but not fsynced, which would double
	// the time every commit waits for the disk (issue 15 goal 4). After a
	// crash the revision files are what counts.
	tmp := filepath.Join(dir, ".juniper.conf.tmp")
	if fs.CopyFile(filepath.Join(dir, name(m.Revision)), tmp, 0o600) != nil || fs.Rename(tmp, filepath.Join(dir, "juniper.conf")) != nil {
		_ = fs.Remove(tmp)
	}
	return m, nil
}

// atomicWrite writes dir/name through a temporary file, fsyncs it,
// renames it into place and fsyncs the directory.
func atomicWrite(fs FS, dir, name string, write func(w *bufio.Writer) error) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := fs.WriteFile(tmp, 0o600, write); err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(dir)
}

// Confirm confirms a pending commit confirmed (`commit` or `commit check`
// after `commit confirmed`). It reports whether one was pending.
func (d *DB) Confirm() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		return false, nil
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if err := d.opt.FS.Remove(filepath.Join(d.opt.Dir, "confirm")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, fmt.Errorf("db: %w", err)
	}
	d.pending = nil
	return true, d.opt.FS.SyncDir(d.opt.Dir)
}

// expire is the commit confirmed timer.
func (d *DB) expire() {
	d.mu.Lock()
	if d.pending == nil {
		d.mu.Unlock()
		return
	}
	m, cfg, err := d.autoRollback()
	d.mu.Unlock()
	if err == nil && d.opt.OnRollback != nil {
		d.opt.OnRollback(m, cfg)
	}
}

// autoRollback commits the configuration that preceded the unconfirmed
// revision. d.mu is held.
func (d *DB) autoRollback() (Meta, *conf.Node, error) {
	prev := conf.New()
	if len(d.hist) > 1 {
		_, c, err := d.read(d.hist[1].Revision)
		if err != nil {
			return Meta{}, nil, err
		}
		prev = c
	}
	d.pending = nil
	_ = d.opt.FS.Remove(filepath.Join(d.opt.Dir, "confirm"))
	m, err := d.commit(prev, Meta{User: "root", Client: "cfgd", Comment: "commit confirmed rollback"}, false)
	if err != nil {
		return Meta{}, nil, err
	}
	return m, prev.Clone(), nil
}
