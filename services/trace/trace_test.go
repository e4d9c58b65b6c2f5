package trace

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
)

var t0 = time.Date(2026, time.November, 27, 21, 15, 2, 123456000, time.UTC)

// fixedClock returns t0 on every call.
func fixedClock() time.Time { return t0 }

func newTest(t testing.TB, flags []Flag) (*Tracer, string) {
	t.Helper()
	root := t.TempDir()
	tr, err := New(root, "kmd", flags, WithClock(fixedClock), WithPID(1234))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, root
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func files(n uint32) *uint32 { return &n }

func TestNewDefaults(t *testing.T) {
	tr, root := newTest(t, KMDFlags)
	want := filepath.Join(root, "var", "log", "kmd")
	if tr.Path() != want {
		t.Fatalf("Path = %q, want %q", tr.Path(), want)
	}
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if !tr.Enabled(FlagIKE, Error) || tr.Enabled(FlagIKE, Warning) || tr.Enabled(FlagAll, Info) {
		t.Fatal("default must be level error, no flags")
	}
}

func TestLineFormat(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Flags: []string{"ike"}, Level: "all"}); err != nil {
		t.Fatal(err)
	}
	tr.Event(FlagIKE, Info).Str("peer", "192.0.2.1").Msg("IKE_SA_INIT received")
	tr.Event(FlagIKE, Error).Err(errors.New("no proposal chosen")).Uint32("spi", 0x1234).Msg("AUTH failed")
	tr.Event(FlagIKE, Warning).Str("why", `say "hi"`).Str("empty", "").Bool("ok", true).Msg("multi\nline")
	tr.Event(FlagIKE, Verbose).Strs("ids", []string{"a", "b"}).Float64("r", 0.5).Msg(`quote "q" \ slash`)
	tr.Event(FlagIKE, Notice).Str("k", "a=b").Msg("")
	tr.Lifecycle().Int64("revision", 3).Msg("configuration applied")

	got := lines(readFile(t, tr.Path()))
	want := []string{
		`Nov 27 21:15:02.123456 kmd[1234]: ike: IKE_SA_INIT received peer=192.0.2.1`,
		`Nov 27 21:15:02.123456 kmd[1234]: ike: error: AUTH failed error="no proposal chosen" spi=4660`,
		`Nov 27 21:15:02.123456 kmd[1234]: ike: warning: multi\nline why="say \"hi\"" empty="" ok=true`,
		`Nov 27 21:15:02.123456 kmd[1234]: ike: quote "q" \ slash ids=["a","b"] r=0.5`,
		`Nov 27 21:15:02.123456 kmd[1234]: ike: k="a=b"`,
		`Nov 27 21:15:02.123456 kmd[1234]: configuration applied revision=3`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name  string
		level string
		flags []string
		flag  Flag
		lvl   Level
		want  bool
	}{
		{"default error written", "", nil, FlagIKE, Error, true},
		{"default warning dropped", "", nil, FlagIKE, Warning, false},
		{"error needs no flag", "info", nil, FlagTimer, Error, true},
		{"info without flag dropped", "info", nil, FlagIKE, Info, false},
		{"info with flag", "info", []string{"ike"}, FlagIKE, Info, true},
		{"info other flag dropped", "info", []string{"ike"}, FlagTimer, Info, false},
		{"all flag", "info", []string{"all"}, FlagTimer, Info, true},
		{"verbose above info", "info", []string{"all"}, FlagIKE, Verbose, false},
		{"notice below info", "info", []string{"ike"}, FlagIKE, Notice, true},
		{"warning at warning", "warning", []string{"ike"}, FlagIKE, Warning, true},
		{"notice above warning", "warning", []string{"ike"}, FlagIKE, Notice, false},
		{"level all", "all", []string{"parse"}, FlagParse, All, true},
		{"level all other flag", "all", []string{"parse"}, FlagIKE, All, false},
		{"flag but level error", "error", []string{"all"}, FlagIKE, Info, false},
		{"several flags", "verbose", []string{"timer", "ike"}, FlagIKE, Verbose, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTest(t, KMDFlags)
			if err := tr.Configure(&pb.Traceoptions{Level: tc.level, Flags: tc.flags}); err != nil {
				t.Fatal(err)
			}
			if got := tr.Enabled(tc.flag, tc.lvl); got != tc.want {
				t.Fatalf("Enabled(%s, %s) = %v, want %v", tc.flag, tc.lvl, got, tc.want)
			}
			tr.Event(tc.flag, tc.lvl).Msg("probe")
			tr.Message(tc.flag, tc.lvl, "probe-message", &pb.SA{Spi: 1})
			n := strings.Count(readFile(t, tr.Path()), "probe")
			if want := map[bool]int{true: 2, false: 0}[tc.want]; n != want {
				t.Fatalf("%d lines written, want %d", n, want)
			}
		})
	}
}

func TestLifecycleAlwaysWritten(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	// Level error, no flags, and a match that matches nothing else.
	if err := tr.Configure(&pb.Traceoptions{Match: "^never$"}); err != nil {
		t.Fatal(err)
	}
	tr.Lifecycle().Msg("kmd started")
	tr.Event(FlagIKE, Error).Msg("an error")
	got := readFile(t, tr.Path())
	if !strings.Contains(got, "kmd started") {
		t.Fatalf("lifecycle line missing: %q", got)
	}
	if strings.Contains(got, "an error") {
		t.Fatalf("match must still filter errors: %q", got)
	}
	if s := tr.Stats(); s.Written != 1 || s.Unmatched != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestMatch(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Level: "info", Flags: []string{"all"}, Match: `peer=192\.0\.2\.1( |$)`}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"192.0.2.1", "192.0.2.10", "198.51.100.1", "192.0.2.1"} {
		tr.Event(FlagIKE, Info).Str("peer", p).Msg("hello")
	}
	// The regex sees the rendered line, prefix included.
	tr.Event(FlagTimer, Info).Msg("peer=192.0.2.1")
	got := lines(readFile(t, tr.Path()))
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}
	if s := tr.Stats(); s.Unmatched != 2 || s.Written != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

// lineOf returns a trace line of exactly n bytes (n >= 60) for message i.
func writeSized(tr *Tracer, i, n int) {
	const prefix = len("Nov 27 21:15:02.123456 kmd[1234]: ike: error: 000 ")
	tr.Event(FlagIKE, Error).Msg(fmt.Sprintf("%03d %s", i, strings.Repeat("x", n-prefix-1)))
}

func TestRotation(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	// 100-byte lines, 250-byte files: two lines per file.
	if err := tr.Configure(&pb.Traceoptions{Files: files(3), Size: 250}); err != nil {
		t.Fatal(err)
	}
	p := tr.Path()
	for i := 0; i < 9; i++ {
		writeSized(tr, i, 100)
	}
	// Lines 0..5 were rotated away file by file; 0..3 fell off the end.
	want := map[string][]string{
		p + ".1": {"004", "005"},
		p + ".0": {"006", "007"},
		p:        {"008"},
	}
	for path, ids := range want {
		got := lines(readFile(t, path))
		if len(got) != len(ids) {
			t.Fatalf("%s: %d lines, want %d", path, len(got), len(ids))
		}
		for i, id := range ids {
			if !strings.Contains(got[i], "error: "+id+" ") {
				t.Errorf("%s line %d = %q, want message %s", path, i, got[i], id)
			}
		}
		if fi, _ := os.Stat(path); fi.Size() > 250 {
			t.Errorf("%s is %d bytes, over size", path, fi.Size())
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files = %v, want kmd kmd.0 kmd.1", names)
	}
	if s := tr.Stats(); s.Rotations != 4 || s.Written != 9 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRotationLongLine(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Files: files(2), Size: 100}); err != nil {
		t.Fatal(err)
	}
	writeSized(tr, 1, 60)
	writeSized(tr, 2, 300) // longer than size: rotates, then written alone
	writeSized(tr, 3, 60)
	if got := lines(readFile(t, tr.Path())); len(got) != 1 || !strings.Contains(got[0], " 003 ") {
		t.Fatalf("live = %q", got)
	}
	if got := lines(readFile(t, tr.Path()+".0")); len(got) != 1 || !strings.Contains(got[0], " 002 ") {
		t.Fatalf(".0 = %q", got)
	}
	if _, err := os.Stat(tr.Path() + ".1"); !os.IsNotExist(err) {
		t.Fatalf("files=2 must keep one archive, .1: %v", err)
	}
}

func TestWorldReadable(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	mode := func(path string) os.FileMode {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	steps := []struct {
		o    *pb.Traceoptions
		want os.FileMode
	}{
		{&pb.Traceoptions{WorldReadable: true, Files: files(2), Size: 100}, 0o644},
		{&pb.Traceoptions{NoWorldReadable: true, Files: files(2), Size: 100}, 0o600},
		{&pb.Traceoptions{WorldReadable: true, Files: files(2), Size: 100}, 0o644},
		{nil, 0o600},
	}
	for i, s := range steps {
		if err := tr.Configure(s.o); err != nil {
			t.Fatal(err)
		}
		if got := mode(tr.Path()); got != s.want {
			t.Fatalf("step %d: mode %v, want %v", i, got, s.want)
		}
	}
	// Archives keep the mode they had when rotated.
	if err := tr.Configure(&pb.Traceoptions{WorldReadable: true, Files: files(3), Size: 100}); err != nil {
		t.Fatal(err)
	}
	writeSized(tr, 1, 80)
	writeSized(tr, 2, 80)
	if got := mode(tr.Path() + ".0"); got != 0o644 {
		t.Fatalf("archive mode %v, want 0644", got)
	}
	if err := tr.Configure(&pb.Traceoptions{Files: files(3), Size: 100}); err != nil {
		t.Fatal(err)
	}
	writeSized(tr, 3, 80)
	if mode(tr.Path()) != 0o600 || mode(tr.Path()+".0") != 0o600 || mode(tr.Path()+".1") != 0o644 {
		t.Fatalf("modes: live %v .0 %v .1 %v", mode(tr.Path()), mode(tr.Path()+".0"), mode(tr.Path()+".1"))
	}
}

func TestConfigureFile(t *testing.T) {
	tr, root := newTest(t, KMDFlags)
	logDir := filepath.Join(root, "var", "log")
	tr.Event(FlagIKE, Error).Msg("in default")

	if err := tr.Configure(&pb.Traceoptions{File: "ipsec.log"}); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(logDir, "ipsec.log"); tr.Path() != want {
		t.Fatalf("Path = %q, want %q", tr.Path(), want)
	}
	tr.Event(FlagIKE, Error).Msg("in ipsec.log")

	// Issue 14 item 5: a path is not a trace file name; the daemon keeps
	// writing where it was and creates nothing there.
	abs := filepath.Join(t.TempDir(), "sub", "abs.log")
	if err := tr.Configure(&pb.Traceoptions{File: abs}); err == nil {
		t.Fatal("absolute trace file accepted")
	}
	if _, err := os.Stat(filepath.Dir(abs)); !os.IsNotExist(err) {
		t.Fatalf("rejected trace file's directory was created: %v", err)
	}
	tr.Event(FlagIKE, Error).Msg("still in ipsec.log")

	for path, want := range map[string]string{
		filepath.Join(logDir, "kmd"):       "in default",
		filepath.Join(logDir, "ipsec.log"): "still in ipsec.log",
	} {
		got := lines(readFile(t, path))
		if len(got) == 0 || !strings.HasSuffix(got[len(got)-1], want) {
			t.Errorf("%s = %q, want last line %q", path, got, want)
		}
	}

	// Back to the default name: appends to the existing file.
	if err := tr.Configure(nil); err != nil {
		t.Fatal(err)
	}
	tr.Event(FlagIKE, Error).Msg("again")
	if got := lines(readFile(t, filepath.Join(logDir, "kmd"))); len(got) != 2 {
		t.Fatalf("default file = %q", got)
	}
}

func TestConfigureErrorKeepsSettings(t *testing.T) {
	tests := []struct {
		name string
		o    *pb.Traceoptions
		want string
	}{
		{"unknown flag", &pb.Traceoptions{Flags: []string{"ike", "bogus"}, Level: "all"}, `flag "bogus"`},
		{"pkid flag in kmd", &pb.Traceoptions{Flags: []string{"enrollment"}}, `flag "enrollment"`},
		{"bad level", &pb.Traceoptions{Level: "debug"}, `level`},
		{"bad regex", &pb.Traceoptions{Match: "(unclosed", Level: "all"}, `match "(unclosed"`},
		{"files too few", &pb.Traceoptions{Files: files(1)}, "files 1"},
		{"files too many", &pb.Traceoptions{Files: files(1001)}, "files 1001"},
		{"escaping name", &pb.Traceoptions{File: "../../etc/passwd"}, `file "../../etc/passwd"`},
		{"absolute path", &pb.Traceoptions{File: "/etc/passwd"}, `file "/etc/passwd": must be a file name`},
		{"sub directory", &pb.Traceoptions{File: "sub/x"}, `file "sub/x"`},
		{"file is a directory", &pb.Traceoptions{File: "adir", Flags: []string{"ike"}}, `is a directory`},
		{"file is a symlink", &pb.Traceoptions{File: "alink", Flags: []string{"ike"}}, `too many levels of symbolic links`},
		{"file is a fifo", &pb.Traceoptions{File: "afifo", Flags: []string{"ike"}}, `afifo`},
		{"file has two links", &pb.Traceoptions{File: "ahard", Flags: []string{"ike"}}, `2 hard links`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, root := newTest(t, KMDFlags)
			logDir := filepath.Join(root, "var", "log")
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(os.Mkdir(filepath.Join(logDir, "adir"), 0o755),
				os.Symlink(victim, filepath.Join(logDir, "alink")),
				syscall.Mkfifo(filepath.Join(logDir, "afifo"), 0o600),
				os.Link(victim, filepath.Join(logDir, "ahard"))); err != nil {
				t.Fatal(err)
			}
			good := &pb.Traceoptions{File: "good", Flags: []string{"timer"}, Level: "info", Match: "keep"}
			if err := tr.Configure(good); err != nil {
				t.Fatal(err)
			}
			path := tr.Path()
			err := tr.Configure(tc.o)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "trace: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line starting trace: containing %q", msg, tc.want)
			}
			if tr.Path() != path || !tr.Enabled(FlagTimer, Info) || tr.Enabled(FlagIKE, Info) || tr.Enabled(FlagTimer, Verbose) {
				t.Fatal("previous settings not kept")
			}
			tr.Event(FlagTimer, Info).Msg("dropped by match")
			tr.Event(FlagTimer, Info).Msg("keep me")
			if got := lines(readFile(t, path)); len(got) != 1 {
				t.Fatalf("match not kept: %q", got)
			}
			if b := readFile(t, victim); b != "x\n" {
				t.Fatalf("file outside the log directory written: %q", b)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		o      *pb.Traceoptions
		flags  []Flag
		wantOK bool
	}{
		{nil, KMDFlags, true},
		{&pb.Traceoptions{File: "ipsec.log", Files: files(10), Size: 10240, Flags: []string{"all"}, Level: "verbose", Match: "peer"}, KMDFlags, true},
		{&pb.Traceoptions{Flags: []string{"enrollment"}}, PKIDFlags, true},
		{&pb.Traceoptions{Flags: []string{"enrollment"}}, KMDFlags, false},
		{&pb.Traceoptions{Level: "loud"}, KMDFlags, false},
		{&pb.Traceoptions{Match: "["}, KMDFlags, false},
		{&pb.Traceoptions{Files: files(0)}, KMDFlags, false},
		{&pb.Traceoptions{File: "a/../../b"}, KMDFlags, false},
		{&pb.Traceoptions{File: "/etc/cron.d/x"}, KMDFlags, false},
		{&pb.Traceoptions{File: "a/b"}, KMDFlags, false},
		{&pb.Traceoptions{File: ".."}, KMDFlags, false},
	}
	for i, tc := range tests {
		if err := Validate(tc.o, "kmd", tc.flags); (err == nil) != tc.wantOK {
			t.Errorf("case %d: Validate = %v, want ok %v", i, err, tc.wantOK)
		}
	}
}

func TestPKIDFlags(t *testing.T) {
	tr, _ := newTest(t, PKIDFlags)
	if err := tr.Configure(&pb.Traceoptions{Flags: []string{"online-crl-check"}, Level: "info"}); err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled(FlagOnlineCRLCheck, Info) || tr.Enabled(FlagEnrollment, Info) {
		t.Fatal("pkid flag filtering")
	}
	if err := tr.Configure(&pb.Traceoptions{Flags: []string{"ike"}}); err == nil {
		t.Fatal("kmd flag accepted by pkid")
	}
}

func TestNewUnusableRoot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The log directory is taken by a file.
	logIsFile := filepath.Join(dir, "r2")
	if err := os.MkdirAll(filepath.Join(logIsFile, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logIsFile, "var", "log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The trace file is a directory.
	traceIsDir := filepath.Join(dir, "r3")
	if err := os.MkdirAll(filepath.Join(traceIsDir, "var", "log", "kmd"), 0o755); err != nil {
		t.Fatal(err)
	}
	roots := []string{file, logIsFile, traceIsDir}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, ro)
	}
	for _, root := range roots {
		tr, err := New(root, "kmd", KMDFlags)
		if err == nil {
			tr.Close()
			t.Errorf("root %s: no error", root)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "trace: ") || !strings.Contains(msg, root) {
			t.Errorf("root %s: error %q: want one line naming the path", root, msg)
		}
	}
	if _, err := New(dir, "../kmd", KMDFlags); err == nil {
		t.Error("daemon name with a slash accepted")
	}
}

func TestAppendsAcrossRestart(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 2; i++ {
		tr, err := New(root, "pkid", PKIDFlags, WithClock(fixedClock))
		if err != nil {
			t.Fatal(err)
		}
		tr.Lifecycle().Int("run", i).Msg("pkid started")
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got := lines(readFile(t, filepath.Join(root, "var", "log", "pkid")))
	if len(got) != 2 || !strings.HasSuffix(got[1], "run=1") {
		t.Fatalf("lines = %q", got)
	}
}

func TestClose(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if tr.Event(FlagIKE, Error) != nil || tr.Lifecycle() != nil || tr.Enabled(FlagIKE, Error) {
		t.Fatal("events after Close")
	}
	tr.Message(FlagIKE, Error, "x", &pb.SA{})
	if err := tr.Configure(nil); err == nil {
		t.Fatal("Configure after Close succeeded")
	}
}

// TestSecretsNeverWritten traces an SA with keys and a configuration with a
// pre-shared key and a CRL password at the most verbose settings, then greps
// the file for every encoding of the secrets.
func TestSecretsNeverWritten(t *testing.T) {
	tr, _ := newTest(t, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Flags: []string{"all"}, Level: "all"}); err != nil {
		t.Fatal(err)
	}
	encKey := []byte("ENCKEY-0123456789abcdef")
	authKey := []byte("AUTHKEY-fedcba9876543210")
	psk := []byte("PSK-correct-horse-battery")
	const crlPassword = "CRLPW-hunter2"
	sa := &pb.SAInstall{Sas: []*pb.SA{{
		Spi: 0xc0ffee, EncryptionAlgorithm: "aes-256-cbc",
		EncryptionKey: encKey, AuthenticationKey: authKey,
	}}}
	cfg := &pb.ConfigSnapshot{Revision: 7, Config: &pb.Config{
		IpsecVpn: &pb.IPsecVPN{Ike: &pb.IKE{Policies: []*pb.IKEPolicy{{
			Name: "p1", PreSharedKey: &pb.Key{Value: psk},
		}}}},
		Pki: &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca1", CrlPassword: crlPassword}}},
	}}
	tr.Message(FlagIKE, Verbose, "sa install", sa)
	tr.Message(FlagDatabase, All, "config", cfg)
	tr.Message(FlagDatabase, All, "nil", nil)
	tr.Message(FlagDatabase, All, "typed nil", (*pb.SA)(nil))

	got := readFile(t, tr.Path())
	for _, secret := range [][]byte{encKey, authKey, psk, []byte(crlPassword)} {
		for _, enc := range []string{
			string(secret),
			base64.StdEncoding.EncodeToString(secret),
			base64.RawStdEncoding.EncodeToString(secret),
			base64.URLEncoding.EncodeToString(secret),
			hex.EncodeToString(secret),
		} {
			if strings.Contains(got, enc) {
				t.Fatalf("secret %q (as %q) in trace file:\n%s", secret, enc, got)
			}
		}
	}
	// The messages were traced, with their public fields.
	for _, want := range []string{"sa install SAInstall={", `"spi":12648430`, `"encryption_algorithm":"aes-256-cbc"`, "config ConfigSnapshot={", `"name":"ca1"`, "nil proto=null", "typed nil SA="} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
	// The caller's message is untouched.
	if !bytes.Equal(sa.Sas[0].EncryptionKey, encKey) || !proto.Equal(cfg.Config.IpsecVpn.Ike.Policies[0].PreSharedKey, &pb.Key{Value: psk}) {
		t.Fatal("Message modified its argument")
	}
}

var lineRE = regexp.MustCompile(`^Nov 27 21:15:02\.123456 kmd\[1234\]: ike: error: w(\d+) n=(\d+)$`)

// TestConcurrentReconfigure writes error lines (which every setting passes)
// from several goroutines while another one keeps reconfiguring file name,
// size, mode, level and flags. Every line must arrive exactly once, whole.
func TestConcurrentReconfigure(t *testing.T) {
	tr, root := newTest(t, KMDFlags)
	const writers, perWriter = 4, 400
	configs := []*pb.Traceoptions{
		{File: "a", Files: files(MaxFiles), Size: 2048, Flags: []string{"ike"}, Level: "info"},
		{File: "b", Files: files(MaxFiles), Size: 4096, WorldReadable: true, Level: "all", Flags: []string{"all"}},
		{File: "a", Files: files(MaxFiles), Size: 1024, Level: "warning"},
	}
	stop := make(chan struct{})
	var cfgDone sync.WaitGroup
	cfgDone.Add(1)
	go func() {
		defer cfgDone.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := tr.Configure(configs[i%len(configs)]); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perWriter; n++ {
				tr.Event(FlagIKE, Error).Int("n", n).Msg(fmt.Sprintf("w%d", w))
				tr.Event(FlagTimer, Verbose).Msg("noise that only some settings let through")
			}
		}()
	}
	wg.Wait()
	close(stop)
	cfgDone.Wait()

	seen := map[string]int{}
	paths, _ := filepath.Glob(filepath.Join(root, "var", "log", "*"))
	sort.Strings(paths)
	for _, p := range paths {
		for _, l := range lines(readFile(t, p)) {
			if strings.Contains(l, "noise") {
				continue
			}
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s: corrupted line %q", p, l)
			}
			seen[m[1]+"/"+m[2]]++
		}
	}
	for w := 0; w < writers; w++ {
		for n := 0; n < perWriter; n++ {
			if k := fmt.Sprintf("%d/%d", w, n); seen[k] != 1 {
				t.Fatalf("line %s written %d times", k, seen[k])
			}
		}
	}
	if s := tr.Stats(); s.Failed != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
		ok   bool
	}{
		{"", Error, true}, {"error", Error, true}, {"warning", Warning, true},
		{"notice", Notice, true}, {"info", Info, true}, {"verbose", Verbose, true},
		{"all", All, true}, {"debug", Error, false}, {"Info", Error, false},
	} {
		got, err := ParseLevel(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseLevel(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && tc.in != "" && got.String() != tc.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Level(42).String(); s != "level(42)" {
		t.Errorf("Level(42) = %q", s)
	}
}

// BenchmarkEventOff is the cost a disabled trace call adds: Event alone.
func BenchmarkEventOff(b *testing.B) {
	tr, _ := newTest(b, KMDFlags) // default: level error
	b.ReportAllocs()
	for b.Loop() {
		if e := tr.Event(FlagIKE, Info); e != nil {
			b.Fatal("enabled")
		}
	}
}

// BenchmarkEventFiltered is a whole disabled call: Event, two fields, Msg.
func BenchmarkEventFiltered(b *testing.B) {
	tr, _ := newTest(b, KMDFlags) // default: level error
	b.ReportAllocs()
	for b.Loop() {
		tr.Event(FlagIKE, Info).Str("peer", "192.0.2.1").Uint32("spi", 7).Msg("IKE_SA_INIT received")
	}
}

func BenchmarkEventFilteredByFlag(b *testing.B) {
	tr, _ := newTest(b, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Level: "all", Flags: []string{"timer", "parse"}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Event(FlagIKE, Info).Str("peer", "192.0.2.1").Uint32("spi", 7).Msg("IKE_SA_INIT received")
	}
}

func BenchmarkEventWritten(b *testing.B) {
	tr, _ := newTest(b, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Level: "info", Flags: []string{"ike"}, Files: files(2), Size: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Event(FlagIKE, Info).Str("peer", "192.0.2.1").Uint32("spi", 7).Msg("IKE_SA_INIT received")
	}
}

func BenchmarkMessageWritten(b *testing.B) {
	tr, _ := newTest(b, KMDFlags)
	if err := tr.Configure(&pb.Traceoptions{Level: "all", Flags: []string{"all"}, Files: files(2), Size: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	m := &pb.SAInstall{Sas: []*pb.SA{{Spi: 7, EncryptionAlgorithm: "aes-256-gcm", EncryptionKey: make([]byte, 36)}}}
	b.ReportAllocs()
	for b.Loop() {
		tr.Message(FlagIKE, Verbose, "sa install", m)
	}
}
