// Package trace writes a daemon's trace file the way Junos traceoptions do:
// one human-readable line per message, filtered by flag and level, rotated
// by size, reconfigured by commit without a restart.
//
// # Filtering
//
// A message of flag f at level l is written when
//
//	l <= the configured level, and
//	(flag "all" is configured, or f is configured, or l is Error)
//
// so errors are always written, whatever the flags. Then, when a `match`
// regular expression is configured (RE2 syntax), it must match the rendered
// line (timestamp and prefix included, newline excluded). Lifecycle lines
// (start, stop, configuration applied) bypass flags, level and match, but are
// rotated like any other line. When a message is filtered out by flag or
// level, Event returns a nil *zerolog.Event, whose methods do nothing, so a
// disabled trace call costs about a nanosecond and allocates nothing.
//
// # File format
//
// One line per message, in local time with microseconds:
//
//	Nov 27 21:15:02.123456 kmd[1234]: ike: IKE_SA_INIT received peer=192.0.2.1
//	Nov 27 21:15:02.123501 kmd[1234]: ike: error: AUTH failed peer=192.0.2.1
//	Nov 27 21:15:03.000007 kmd[1234]: configuration applied revision=3
//
// The flag comes first, then "error: " or "warning: " for those levels, the
// message, and the fields as key=value in the order they were added. String
// values that contain spaces, quotes or '=' are JSON-quoted; numbers, objects
// and arrays are compact JSON. Control characters are escaped, so a message
// is always exactly one line. Protobuf messages go through Message, which
// redacts their secret fields; never pass one to Interface or Any.
//
// # Files and rotation
//
// The default file is <root>/var/log/<daemon>. A `file` is a file name, as
// in Junos, placed in <root>/var/log/: a name with '/' or ".." is rejected
// (cfgd refuses it at commit check too). Existing files are appended to; a
// symbolic link, a non-regular file or a file with several hard links is
// refused rather than written through.
//
// When writing a line would make the file exceed `size` bytes, the file is
// renamed <file>.0, the old <file>.0 becomes <file>.1 and so on, keeping
// files-1 archives (`files` files in all, the live one included); the oldest
// is dropped. A single line
// longer than `size` is still written, alone in its file. Lowering `files`
// leaves the now surplus archives in place. Files are created 0600, or 0644
// with `world-readable`; archives keep the mode they had.
//
// Defaults, before any Configure or for a nil Traceoptions: level error, no
// flags, file <daemon>, files 3 (the Junos default), size 128 KiB (the
// default Junos documents for most traceoptions; SPEC has none for security
// traceoptions), no-world-readable, no match.
package trace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
)

// Defaults and limits of traceoptions file.
const (
	DefaultFiles = 3
	MinFiles     = 2
	MaxFiles     = 1000
	DefaultSize  = 128 << 10

	modePrivate = 0o600
	modeWorld   = 0o644
)

// settings is one immutable snapshot of the committed traceoptions. Readers
// load it atomically; Configure swaps it.
type settings struct {
	level  Level
	all    bool
	flags  []Flag // configured flags, deduplicated; a short list beats a map
	match  *regexp.Regexp
	path   string
	files  int
	size   int64
	mode   os.FileMode
	closed bool
}

// Tracer writes one daemon's trace file. It is safe for concurrent use.
type Tracer struct {
	st atomic.Pointer[settings]

	daemon string
	logDir string
	valid  map[Flag]bool
	flags  []Flag
	now    func() time.Time
	pid    int
	log    zerolog.Logger

	mu     sync.Mutex // guards the fields below
	f      *os.File
	size   int64 // bytes in f
	buf    []byte
	fields []field
	stats  Stats
}

// Stats counts what a Tracer did with the messages that passed flag and
// level filtering.
type Stats struct {
	Written   uint64 // lines written
	Unmatched uint64 // lines dropped by the match regex
	Failed    uint64 // lines lost to a write, open or rotation error
	Rotations uint64 // file rotations
}

// Option changes how New builds a Tracer.
type Option func(*Tracer)

// WithClock sets the source of line timestamps (default time.Now). The
// location of the returned time is used as is.
func WithClock(now func() time.Time) Option {
	return func(t *Tracer) { t.now = now }
}

// WithPID sets the process id written after the daemon name (default
// os.Getpid()).
func WithPID(pid int) Option {
	return func(t *Tracer) { t.pid = pid }
}

// New opens the trace file <root>/var/log/<daemon> (creating the
// directories) with the default settings. flags are the flags the daemon
// accepts in Configure. An empty root means "/".
func New(root, daemon string, flags []Flag, opts ...Option) (*Tracer, error) {
	if daemon == "" || strings.ContainsAny(daemon, `/\`) || daemon == "." || daemon == ".." {
		return nil, fmt.Errorf("trace: bad daemon name %q", daemon)
	}
	if root == "" {
		root = string(filepath.Separator)
	}
	t := &Tracer{
		daemon: daemon,
		logDir: filepath.Join(root, "var", "log"),
		valid:  make(map[Flag]bool, len(flags)),
		flags:  append([]Flag(nil), flags...),
		now:    time.Now,
		pid:    os.Getpid(),
	}
	for _, f := range flags {
		t.valid[f] = true
	}
	for _, o := range opts {
		o(t)
	}
	s, err := t.settingsFor(nil)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(t.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("trace: log directory: %w", oneLine(err))
	}
	f, size, err := openFile(s.path, s.mode)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", oneLine(err))
	}
	t.f, t.size = f, size
	t.st.Store(s)
	t.log = zerolog.New(writer{t})
	return t, nil
}

// Configure applies a committed traceoptions; nil restores the defaults. It
// reopens the file only when its name changed, and chmods it when
// world-readable changed. On error (unknown flag or level, bad match regex,
// files out of 2..1000, bad file name, file that cannot be opened) the
// previous settings stay in force.
func (t *Tracer) Configure(o *pb.Traceoptions) error {
	s, err := t.settingsFor(o)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.st.Load()
	if old.closed {
		return errors.New("trace: tracer closed")
	}
	switch {
	case s.path != old.path || t.f == nil:
		f, size, err := openFile(s.path, s.mode)
		if err != nil {
			return fmt.Errorf("trace: traceoptions file: %w", oneLine(err))
		}
		if t.f != nil {
			t.f.Close()
		}
		t.f, t.size = f, size
	case s.mode != old.mode:
		if err := t.f.Chmod(s.mode); err != nil {
			return fmt.Errorf("trace: traceoptions world-readable: %w", oneLine(err))
		}
	}
	t.st.Store(s)
	return nil
}

// Validate checks o as Configure would for daemon with the given flags,
// without opening anything: unknown flag or level, bad match regex, files
// out of 2..1000, a relative file name that leaves var/log. cfgd can call it
// at commit check.
func Validate(o *pb.Traceoptions, daemon string, flags []Flag) error {
	t := &Tracer{daemon: daemon, logDir: filepath.Join(string(filepath.Separator), "var", "log"), valid: map[Flag]bool{}, flags: flags}
	for _, f := range flags {
		t.valid[f] = true
	}
	_, err := t.settingsFor(o)
	return err
}

// settingsFor validates o and builds the settings it asks for.
func (t *Tracer) settingsFor(o *pb.Traceoptions) (*settings, error) {
	s := &settings{
		path:  filepath.Join(t.logDir, t.daemon),
		files: DefaultFiles,
		size:  DefaultSize,
		mode:  modePrivate,
	}
	if o == nil {
		return s, nil
	}
	var err error
	if s.level, err = ParseLevel(o.GetLevel()); err != nil {
		return nil, fmt.Errorf("trace: traceoptions level: %w", stripPrefix(err))
	}
	for _, name := range o.GetFlags() {
		f := Flag(name)
		if !t.valid[f] {
			return nil, fmt.Errorf("trace: traceoptions flag %q: not a %s flag (valid: %s)", name, t.daemon, flagList(t.flags))
		}
		if !slices.Contains(s.flags, f) {
			s.flags = append(s.flags, f)
		}
		s.all = s.all || f == FlagAll
	}
	if name := o.GetFile(); name != "" {
		if !fileName(name) {
			return nil, fmt.Errorf("trace: traceoptions file %q: must be a file name in %s (no '/' or '..')", name, t.logDir)
		}
		s.path = filepath.Join(t.logDir, name)
	}
	if o.Files != nil {
		n := o.GetFiles()
		if n < MinFiles || n > MaxFiles {
			return nil, fmt.Errorf("trace: traceoptions file files %d: out of range %d..%d", n, MinFiles, MaxFiles)
		}
		s.files = int(n)
	}
	if o.GetSize() > 0 {
		if o.GetSize() > 1<<62 {
			return nil, fmt.Errorf("trace: traceoptions file size %d: too large", o.GetSize())
		}
		s.size = int64(o.GetSize())
	}
	if m := o.GetMatch(); m != "" {
		re, err := regexp.Compile(m)
		if err != nil {
			return nil, fmt.Errorf("trace: traceoptions file match %q: %w", m, oneLine(err))
		}
		s.match = re
	}
	if o.GetWorldReadable() && !o.GetNoWorldReadable() {
		s.mode = modeWorld
	}
	return s, nil
}

// Enabled reports whether a message of flag f at level l would be written
// (before the match regex).
func (t *Tracer) Enabled(f Flag, l Level) bool {
	s := t.st.Load()
	if l > s.level {
		return false
	}
	return s.passes(f, l)
}

// passes is the filtering rule below the level test.
func (s *settings) passes(f Flag, l Level) bool {
	if s.closed {
		return false
	}
	if l <= Error || s.all {
		return true
	}
	for _, c := range s.flags {
		if c == f {
			return true
		}
	}
	return false
}

// Event starts a message of flag f at level l. It returns nil, on which
// every zerolog method is a no-op, when the settings filter it out.
//
//	t.Event(trace.FlagIKE, trace.Info).Str("peer", p).Msg("IKE_SA_INIT received")
func (t *Tracer) Event(f Flag, l Level) *zerolog.Event {
	// The level test is inlined into the caller; it is what filters out
	// most messages.
	if l > t.st.Load().level {
		return nil
	}
	return t.event(f, l)
}

// event is Event's slow path, kept apart so that Event inlines.
func (t *Tracer) event(f Flag, l Level) *zerolog.Event {
	if !t.st.Load().passes(f, l) {
		return nil
	}
	if l < Error {
		l = Error
	}
	return t.log.Log().Str(keyFlag, string(f)).Int(keyLevel, int(l))
}

// Lifecycle starts a message that is written whatever the flags, level and
// match: daemon start and stop, configuration applied. It returns nil once
// the Tracer is closed.
func (t *Tracer) Lifecycle() *zerolog.Event {
	if t.st.Load().closed {
		return nil
	}
	return t.log.Log().Str(keyFlag, "").Int(keyLevel, lifecycleLevel)
}

// Message traces protobuf message m with its secret fields redacted (keys,
// pre-shared keys, passwords), as compact JSON under the key of its type
// name:
//
//	Nov 27 21:15:02.123456 kmd[1234]: ike: sa install SAInstall={"sas":[...]}
func (t *Tracer) Message(f Flag, l Level, msg string, m proto.Message) {
	e := t.Event(f, l)
	if e == nil {
		return
	}
	key := "proto"
	if m != nil {
		key = string(m.ProtoReflect().Descriptor().Name())
	}
	e.RawJSON(key, []byte(redact.JSON(m))).Msg(msg)
}

// Path returns the path of the live trace file.
func (t *Tracer) Path() string { return t.st.Load().path }

// Stats returns the counters since New.
func (t *Tracer) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Close closes the file. Later messages are dropped; Close is idempotent.
func (t *Tracer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.st.Load()
	if old.closed {
		return nil
	}
	s := *old
	s.closed = true
	s.level = Error - 1 // Event's inlined level test then drops everything
	t.st.Store(&s)
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	if err != nil {
		return fmt.Errorf("trace: close: %w", err)
	}
	return nil
}

// writer is the zerolog sink: it renders, filters by match, rotates and
// writes, under the Tracer's lock so that lines are whole and in time order.
type writer struct{ t *Tracer }

// Write never fails, so zerolog never prints to stderr; lost lines are
// counted in Stats.Failed.
func (w writer) Write(p []byte) (int, error) {
	w.t.write(p)
	return len(p), nil
}

func (t *Tracer) write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.st.Load()
	if s.closed {
		t.stats.Failed++
		return
	}
	var h header
	t.buf, t.fields, h = appendLine(t.buf[:0], t.now(), t.daemon, t.pid, p, t.fields)
	if s.match != nil && !h.lifecycle && !s.match.Match(t.buf[:len(t.buf)-1]) {
		t.stats.Unmatched++
		return
	}
	if t.f != nil && t.size > 0 && t.size+int64(len(t.buf)) > s.size {
		t.rotate(s)
	}
	if t.f == nil {
		// A failed rotation or rename left no file: try again for this line.
		f, size, err := openFile(s.path, s.mode)
		if err != nil {
			t.stats.Failed++
			return
		}
		t.f, t.size = f, size
	}
	n, err := t.f.Write(t.buf)
	t.size += int64(n)
	if err != nil {
		t.stats.Failed++
		return
	}
	t.stats.Written++
	if cap(t.buf) > 64<<10 {
		t.buf = nil // do not pin one huge line's buffer
	}
}

// rotate shifts <path>.N-1 to <path>.N down to <path> -> <path>.0 and opens
// a fresh file. The rename onto the last archive drops the oldest.
func (t *Tracer) rotate(s *settings) {
	t.f.Close()
	t.f = nil
	for i := s.files - 2; i > 0; i-- {
		os.Rename(archive(s.path, i-1), archive(s.path, i))
	}
	// If this rename fails the file is reopened and keeps growing: better
	// than losing lines.
	if os.Rename(s.path, archive(s.path, 0)) == nil {
		t.stats.Rotations++
	}
	f, size, err := openFile(s.path, s.mode)
	if err != nil {
		return
	}
	t.f, t.size = f, size
}

func archive(path string, i int) string {
	return fmt.Sprintf("%s.%d", path, i)
}

// fileName reports whether name is a plain file name, as Junos takes a
// trace file name (the file lives in /var/log): no '/' or '\', no NUL,
// no "..". A path would let whoever configures traceoptions make a root
// daemon create, append to, chmod and rename any file (issue 14 item 5).
func fileName(name string) bool {
	return name != "" && name != "." && !strings.ContainsAny(name, "/\\\x00") && !strings.Contains(name, "..")
}

// openFile opens path for appending, creating it and its directory, and
// sets its mode (whatever the umask). It does not follow a symbolic link
// and refuses anything but a regular file with one link, so a link planted
// in the log directory cannot redirect a root daemon's writes.
func openFile(path string, mode os.FileMode) (*os.File, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, mode)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); err == nil && ok && st.Nlink > 1 {
		err = fmt.Errorf("%s: has %d hard links", path, st.Nlink)
	}
	if err == nil && fi.Mode().Perm() != mode {
		err = f.Chmod(mode)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// oneLine keeps an error message on one line.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(msg), " "))
}

// stripPrefix removes this package's "trace: " from a nested error.
func stripPrefix(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "trace: "))
}
