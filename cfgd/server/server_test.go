package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/sitesec/sitesec/proto/subject"
	"google.golang.org/protobuf/proto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/cfgd/db"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/opfile"
)

// fakeBus stores snapshots and has the listed daemons acknowledge them.
type fakeBus struct {
	mu       sync.Mutex
	s        *Server
	snaps    []*pb.ConfigSnapshot
	daemons  []string
	fail     map[string]string // daemon -> apply error
	refuse   map[string]string // daemon -> prepare error
	prepared []string
}

// Request plays the daemons' prepare round.
func (b *fakeBus) Request(_ context.Context, daemon, verb string, req, rep proto.Message) error {
	if verb != subject.VerbPrepare {
		return errors.New("unexpected request " + verb)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prepared = append(b.prepared, daemon)
	a := rep.(*pb.ApplyAck)
	a.Daemon, a.Revision, a.Ok = daemon, req.(*pb.ConfigSnapshot).GetRevision(), true
	if e := b.refuse[daemon]; e != "" {
		a.Ok, a.Errors = false, []string{e}
	}
	return nil
}

func (b *fakeBus) PutConfig(_ context.Context, s *pb.ConfigSnapshot) error {
	b.mu.Lock()
	b.snaps = append(b.snaps, s)
	b.mu.Unlock()
	for _, d := range b.daemons {
		a := &pb.ApplyAck{Daemon: d, Revision: s.GetRevision(), Ok: true}
		if e := b.fail[d]; e != "" {
			a.Ok, a.Errors = false, []string{e}
		}
		go b.s.Ack(a)
	}
	return nil
}

func newServer(t testing.TB, daemons ...string) (*Server, *fakeBus) {
	t.Helper()
	d, err := db.Open(db.Options{Dir: filepath.Join(t.TempDir(), "config")})
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBus{daemons: daemons}
	s := New(d, b)
	b.s = s
	s.AckWait = 300 * time.Millisecond
	for _, n := range []string{"kmd", "fwdd", "pkid"} {
		s.Health(&pb.Health{Daemon: n, State: pb.DaemonState_DAEMON_STATE_RUNNING})
	}
	return s, b
}

func seedText(t *testing.T) string {
	b, err := os.ReadFile("../conf/testdata/seed.conf")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func run(t *testing.T, s *Server, session string, words ...string) *pb.ConfigEditReply {
	t.Helper()
	return s.Edit(context.Background(), &pb.ConfigEditRequest{Session: session, Words: words, User: "admin"})
}

func text(r *pb.ConfigEditReply) string { return r.GetReply().GetConfigText().GetText() }

func TestEditLevels(t *testing.T) {
	s, _ := newServer(t)
	r := run(t, s, "a", "edit", "services", "service-set", "ss1", "ipsec-vpn-options")
	if len(r.Errors) > 0 || r.EditPath != "[edit services service-set ss1 ipsec-vpn-options]" {
		t.Fatalf("edit: %v %q", r.Errors, r.EditPath)
	}
	if r := run(t, s, "a", "set", "tunnel-mtu", "1400"); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if got := text(run(t, s, "a", "show")); got != "tunnel-mtu 1400;\n" {
		t.Fatalf("show at level: %q", got)
	}
	if r := run(t, s, "a", "up"); r.EditPath != "[edit services service-set ss1]" {
		t.Fatalf("up: %q", r.EditPath)
	}
	if r := run(t, s, "a", "top", "set", "system", "host-name", "gw"); r.EditPath != "[edit services service-set ss1]" || len(r.Errors) > 0 {
		t.Fatalf("top set: %q %v", r.EditPath, r.Errors)
	}
	if got := text(run(t, s, "a", "top", "show", "system", "|", "display", "set")); got != "set system host-name gw\n" {
		t.Fatalf("top show display set: %q", got)
	}
	if r := run(t, s, "a", "top"); r.EditPath != "" {
		t.Fatalf("top: %q", r.EditPath)
	}
	// Another session does not see a's candidate.
	if got := text(run(t, s, "b", "show")); got != "" {
		t.Fatalf("session b sees %q", got)
	}
	r = run(t, s, "a", "set", "services", "service-set", "ss1", "ipsec-vpn-options", "tunnel-mtu", "99")
	if len(r.Errors) != 1 || r.Errors[0].Message != "Value 99 is not within range (256..9192)" || r.Errors[0].Statement != "tunnel-mtu 99" {
		t.Fatalf("range error: %v", r.Errors)
	}
	if r := run(t, s, "a", "edit", "system", "host-name"); len(r.Errors) == 0 {
		t.Fatal("edit of a leaf accepted")
	}
	if r := run(t, s, "a", "frobnicate"); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "syntax error") {
		t.Fatalf("unknown command: %v", r.Errors)
	}
}

func TestLoadCommitRollback(t *testing.T) {
	s, bus := newServer(t, "kmd", "fwdd", "pkid", "cfgd")
	r := s.Edit(context.Background(), &pb.ConfigEditRequest{Session: "a", Words: []string{"load", "override", "terminal"}, Text: seedText(t)})
	if len(r.Errors) > 0 || r.Lines[0] != "load complete" {
		t.Fatalf("load: %v %v", r.Errors, r.Lines)
	}
	if r := run(t, s, "a", "commit", "check"); len(r.Errors) > 0 || r.Lines[len(r.Lines)-1] != "configuration check succeeds" {
		t.Fatalf("commit check: %v %v", r.Errors, r.Lines)
	}
	r = run(t, s, "a", "commit", "comment", "first")
	if len(r.Errors) > 0 || r.Revision != 1 || r.Lines[len(r.Lines)-1] != "commit complete" || len(r.Acks) < 3 {
		t.Fatalf("commit: %v %v rev %d acks %v", r.Errors, r.Lines, r.Revision, r.Acks)
	}
	if len(bus.snaps) != 1 || bus.snaps[0].GetComment() != "first" || bus.snaps[0].GetConfig().GetSystem().GetHostName() != "vpn-gw1" {
		t.Fatalf("published %v", bus.snaps)
	}
	run(t, s, "a", "set", "services", "service-set", "ss1", "ipsec-vpn-options", "tunnel-mtu", "1400")
	if got := text(run(t, s, "a", "show", "|", "compare")); got != "[edit services service-set ss1 ipsec-vpn-options]\n-   tunnel-mtu 1500;\n+   tunnel-mtu 1400;\n" {
		t.Fatalf("compare: %q", got)
	}
	// fwdd accepts the candidate in the prepare round but cannot apply it:
	// the commit fails and every daemon goes back to revision 1's
	// configuration, committed again as revision 3.
	bus.fail = map[string]string{"fwdd": "cannot create tun"}
	r = run(t, s, "a", "commit")
	all := strings.Join(r.Lines, "\n")
	if r.Revision != 3 || len(r.Errors) == 0 || !strings.Contains(all, "error: fwdd: cannot create tun") || strings.Contains(all, "commit complete") {
		t.Fatalf("commit 2: %v %v", r.Errors, r.Lines)
	}
	if last := bus.snaps[len(bus.snaps)-1]; last.GetRevision() != 3 || last.GetConfig().GetServiceSets()[0].GetIpsecVpnOptions().GetTunnelMtu() != 1500 {
		t.Fatalf("reverted snapshot %v", last)
	}
	bus.fail = nil
	// rollback 1 loads revision 2 (the one not applied) into the candidate.
	run(t, s, "a", "rollback", "1")
	if got := text(run(t, s, "a", "show", "|", "compare")); !strings.Contains(got, "+   tunnel-mtu 1400;") {
		t.Fatalf("compare after rollback: %q", got)
	}
	// show system commit.
	h := s.Op(context.Background(), &pb.OpRequest{Words: []string{"show", "system", "commit"}}).GetCommitHistory()
	if len(h.GetEntries()) != 3 || h.Entries[2].Comment != "first" || h.Entries[0].Revision != 3 || !strings.Contains(h.Entries[0].Comment, "revision 2 not applied") || h.Entries[0].User != "admin" {
		t.Fatalf("history %v", h)
	}
	op := s.Op(context.Background(), &pb.OpRequest{Words: []string{"show", "configuration", "system"}, Display: "set"})
	if got := op.GetConfigText().GetText(); !strings.HasPrefix(got, "set system host-name vpn-gw1\n") {
		t.Fatalf("show configuration system | display set: %q", got)
	}
	if op := s.Op(context.Background(), &pb.OpRequest{Words: []string{"show", "bogus"}}); op.Error == "" {
		t.Fatal("unknown op accepted")
	}
}

func TestCommitCheckFails(t *testing.T) {
	s, bus := newServer(t)
	s.Edit(context.Background(), &pb.ConfigEditRequest{Session: "a", Words: []string{"load", "override", "terminal"}, Text: seedText(t)})
	run(t, s, "a", "delete", "services", "service-set", "ss2", "ipsec-vpn-options", "local-gateway")
	run(t, s, "a", "set", "services", "ipsec-vpn", "rule", "static-rule", "term", "t1", "then", "ttl", "9")
	run(t, s, "a", "set", "services", "ipsec-vpn", "rule", "static-rule", "term", "t1", "then", "copy-ttl-from-inner-ip-header")
	r := run(t, s, "a", "commit")
	if len(r.Errors) != 2 || r.Revision != 0 || len(bus.snaps) != 0 {
		t.Fatalf("commit: %v %v", r.Errors, r.Lines)
	}
	e := r.Errors[0]
	if e.Path != "[edit services service-set ss2 ipsec-vpn-options]" || e.Statement != "local-gateway" || e.Message != "Local gateway must be configured with IPSec rules" || e.Line != 93 || e.File != "terminal" {
		t.Fatalf("error 0: %v", e)
	}
	if r.Lines[len(r.Lines)-1] != "error: configuration check-out failed" {
		t.Fatalf("lines %v", r.Lines)
	}
}

// loadFile sends a file the way the cli does: read on the operator's
// side, in pieces of piece bytes.
func loadFile(t *testing.T, s *Server, session, mode, f string, piece int) *pb.ConfigEditReply {
	t.Helper()
	b, err := opfile.Read(f, opfile.MaxConfig)
	if err != nil {
		t.Fatal(err)
	}
	var r *pb.ConfigEditReply
	for _, req := range opfile.LoadRequests(session, "admin", []string{"load", mode, f}, f, b, piece) {
		r = s.Edit(context.Background(), req)
		if req.More && (len(r.Errors) > 0 || len(r.Lines) > 0) {
			t.Fatalf("piece at %d: %v %v", req.Offset, r.Errors, r.Lines)
		}
	}
	return r
}

func TestLoadFile(t *testing.T) {
	s, _ := newServer(t)
	f := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(f, []byte("system {\n    host-name a;\n    bogus;\n}\n"), 0o600)
	r := loadFile(t, s, "a", "merge", f, 5)
	if len(r.Errors) != 1 || r.Errors[0].File != f || r.Errors[0].Line != 3 || !strings.HasPrefix(r.Errors[0].Message, "syntax error") {
		t.Fatalf("load bad file: %v", r.Errors)
	}
	os.WriteFile(f, []byte("set system host-name b\n"), 0o600)
	if r := loadFile(t, s, "a", "set", f, 0); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if got := text(run(t, s, "a", "show")); got != "system {\n    host-name b;\n}\n" {
		t.Fatalf("after load set: %q", got)
	}
	// The seed in pieces of 1 KiB loads as in one.
	seed := filepath.Join(t.TempDir(), "seed.conf")
	os.WriteFile(seed, []byte(seedText(t)), 0o600)
	if r := loadFile(t, s, "b", "override", seed, 1024); len(r.Errors) > 0 || r.Lines[0] != "load complete" {
		t.Fatalf("seed in pieces: %v %v", r.Errors, r.Lines)
	}
	if got, want := text(run(t, s, "b", "show")), text(func() *pb.ConfigEditReply {
		s.Edit(context.Background(), &pb.ConfigEditRequest{Session: "c", Words: []string{"load", "override", "terminal"}, Text: seedText(t)})
		return run(t, s, "c", "show")
	}()); got != want || got == "" {
		t.Fatal("seed loaded in pieces differs from the seed loaded at once")
	}
}

// Issue 14 item 5: cfgd runs as root and must not open a file the operator
// names; before, `load override /root-only/file` read it and quoted its
// first line in the syntax error.
func TestLoadNeverOpensFiles(t *testing.T) {
	s, _ := newServer(t)
	f := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(f, []byte("root:SECRET-HASH:19000:0:99999:7:::\n"), 0o600)
	for _, mode := range []string{"merge", "override", "replace", "set"} {
		r := run(t, s, "a", "load", mode, f)
		all := fmt.Sprint(r.Errors, r.Lines)
		if len(r.Errors) == 0 || strings.Contains(all, "SECRET") || !strings.Contains(all, "cfgd does not read files") {
			t.Fatalf("load %s FILE without text: %s", mode, all)
		}
	}
	for _, dev := range []string{"/dev/zero", "relative.conf"} {
		if r := run(t, s, "a", "load", "merge", dev); len(r.Errors) == 0 {
			t.Fatalf("load merge %s accepted", dev)
		}
	}
	if got := text(run(t, s, "a", "show")); got != "" {
		t.Fatalf("candidate changed: %q", got)
	}
}

// Pieces out of order or beyond the bound are refused and forgotten.
func TestLoadPieces(t *testing.T) {
	s, _ := newServer(t)
	words := []string{"load", "merge", "/x.conf"}
	edit := func(off uint64, more bool, text string) *pb.ConfigEditReply {
		return s.Edit(context.Background(), &pb.ConfigEditRequest{Session: "a", Words: words, File: "/x.conf", Text: text, Offset: off, More: more})
	}
	edit(0, true, "system { host-")
	if r := edit(20, false, "name a; }"); len(r.Errors) == 0 {
		t.Fatal("gap accepted")
	}
	if r := edit(14, false, "name a; }"); len(r.Errors) == 0 {
		t.Fatal("piece after a refused one accepted: the earlier pieces must be forgotten")
	}
	edit(0, true, "system { host-")
	if r := edit(14, false, "name a; }\n"); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if got := text(run(t, s, "a", "show")); got != "system {\n    host-name a;\n}\n" {
		t.Fatalf("after pieces: %q", got)
	}
	big := strings.Repeat("#\n", MaxLoad/4)
	edit(0, true, big)
	if r := edit(uint64(len(big)), true, big+big); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "more than") {
		t.Fatalf("more than MaxLoad accepted: %v", r.Errors)
	}
}

func TestSessionsAndConfirmed(t *testing.T) {
	s, _ := newServer(t, "kmd", "fwdd", "pkid")
	run(t, s, "a", "set", "system", "host-name", "a")
	run(t, s, "b", "set", "system", "host-name", "b")
	if r := run(t, s, "a", "commit", "confirmed", "3"); r.Revision != 1 || !strings.Contains(strings.Join(r.Lines, "\n"), "rolled back in 3 minutes") {
		t.Fatalf("commit confirmed: %v %v", r.Errors, r.Lines)
	}
	if _, _, ok := s.DB.Pending(); !ok {
		t.Fatal("not pending")
	}
	r := run(t, s, "b", "commit")
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "configuration database modified") {
		t.Fatalf("stale session committed: %v", r.Errors)
	}
	run(t, s, "b", "update")
	if r := run(t, s, "a", "commit", "check"); !strings.Contains(strings.Join(r.Lines, "\n"), "commit confirmed") {
		t.Fatalf("commit check did not confirm: %v", r.Lines)
	}
	if _, _, ok := s.DB.Pending(); ok {
		t.Fatal("still pending")
	}
	if r := run(t, s, "b", "commit", "and-quit"); r.Revision != 2 || r.Lines[len(r.Lines)-1] != "Exiting configuration mode" {
		t.Fatalf("commit and-quit: %v %v", r.Errors, r.Lines)
	}
}

func TestShowMasksSecrets(t *testing.T) {
	s, _ := newServer(t)
	run(t, s, "a", "set", "services", "ipsec-vpn", "ike", "policy", "p", "pre-shared-key", "ascii-text", "SuperSecret1")
	for _, words := range [][]string{{"show"}, {"show", "|", "display", "set"}, {"show", "|", "compare"}, {"show", "services", "ipsec-vpn", "ike", "policy", "p"}} {
		got := text(run(t, s, "a", words...))
		if strings.Contains(got, "SuperSecret1") || !strings.Contains(got, "$9$") {
			t.Errorf("%v: %q", words, got)
		}
	}
	run(t, s, "a", "commit")
	op := s.Op(context.Background(), &pb.OpRequest{Words: []string{"show", "configuration"}})
	if got := op.GetConfigText().GetText(); strings.Contains(got, "SuperSecret1") || !strings.Contains(got, "## SECRET-DATA") {
		t.Errorf("show configuration: %q", got)
	}
}

func TestComplete(t *testing.T) {
	s, _ := newServer(t)
	run(t, s, "a", "set", "services", "ipsec-vpn", "ike", "policy", "gold")
	run(t, s, "a", "edit", "services", "ipsec-vpn", "rule", "r", "term", "t", "then", "dynamic")
	r := run(t, s, "a", "complete", "ike-policy", "g")
	if len(r.Errors) > 0 || len(r.Lines) != 2 || !strings.HasPrefix(r.Lines[1], "gold\t") {
		t.Fatalf("complete: %v %v", r.Errors, r.Lines)
	}
}

func TestMissingAck(t *testing.T) {
	s, _ := newServer(t, "kmd") // fwdd and pkid are running but never answer
	run(t, s, "a", "set", "system", "host-name", "a")
	start := time.Now()
	r := run(t, s, "a", "commit")
	all := strings.Join(r.Lines, "\n")
	if !strings.Contains(all, "warning: fwdd did not report applying revision 1") || !strings.Contains(all, "warning: pkid did not") || len(r.Acks) != 1 {
		t.Fatalf("lines %v acks %v", r.Lines, r.Acks)
	}
	if time.Since(start) > 30*time.Second { // AckWait is 300 ms: a bound, not a timing
		t.Fatal("waited too long")
	}
	// A caller with a short deadline gets its answer before the deadline.
	s.AckWait = time.Minute
	run(t, s, "a", "set", "system", "host-name", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	r = s.Edit(ctx, &pb.ConfigEditRequest{Session: "a", Words: []string{"commit"}})
	// It returns at the caller's deadline, not after AckWait's minute (a
	// bound well apart from both, so a loaded machine does not fail it).
	if r.Revision != 2 || time.Since(start) > 30*time.Second {
		t.Fatalf("commit with deadline: rev %d after %s", r.Revision, time.Since(start))
	}
}

// TestCommitPrepareRound: a daemon that refuses the candidate in the
// prepare round makes commit check and commit fail with its error naming
// the statement; nothing is recorded or sent.
func TestCommitPrepareRound(t *testing.T) {
	s, bus := newServer(t, "kmd", "fwdd", "pkid")
	r := s.Edit(context.Background(), &pb.ConfigEditRequest{Session: "a", Words: []string{"load", "override", "terminal"}, Text: seedText(t)})
	if len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	bus.refuse = map[string]string{"kmd": "[edit services ipsec-vpn ike proposal p1] encryption-algorithm 3des-cbc is not supported"}
	for _, cmd := range [][]string{{"commit", "check"}, {"commit"}} {
		r = run(t, s, "a", cmd...)
		all := strings.Join(r.Lines, "\n")
		if len(r.Errors) != 1 || r.Errors[0].Path != "[edit services ipsec-vpn ike proposal p1]" ||
			r.Errors[0].Message != "kmd: encryption-algorithm 3des-cbc is not supported" ||
			!strings.Contains(all, "error: configuration check-out failed") ||
			strings.Contains(all, "commit complete") || strings.Contains(all, "check succeeds") {
			t.Fatalf("%v: %v %v", cmd, r.Errors, r.Lines)
		}
	}
	if _, m := s.DB.Committed(); m.Revision != 0 || len(bus.snaps) != 0 {
		t.Fatalf("refused commit recorded (revision %d) or sent (%d snapshots)", m.Revision, len(bus.snaps))
	}
	if len(bus.prepared) != 6 {
		t.Fatalf("prepare requests %v, want kmd, fwdd and pkid twice", bus.prepared)
	}
	bus.refuse = nil
	if r = run(t, s, "a", "commit"); len(r.Errors) > 0 || r.Lines[len(r.Lines)-1] != "commit complete" || r.Revision != 1 {
		t.Fatalf("commit once accepted: %v %v", r.Errors, r.Lines)
	}
}

// TestCommittedNotChangedBySession: after a commit the session's candidate
// is the committed configuration itself (DB.CommitOwned, no copy); the
// session's next change must go to a copy, never into what is committed.
func TestCommittedNotChangedBySession(t *testing.T) {
	s, _ := newServer(t)
	ctx := context.Background()
	edit := func(words ...string) *pb.ConfigEditReply {
		t.Helper()
		r := s.Edit(ctx, &pb.ConfigEditRequest{Session: "a", Words: words, User: "admin"})
		if len(r.Errors) > 0 {
			t.Fatalf("%v: %v", words, r.Errors)
		}
		return r
	}
	edit("set", "system", "host-name", "one")
	edit("commit")
	edit("set", "system", "host-name", "two")
	edit("delete", "system")
	cfg, _ := s.DB.Committed()
	if h := cfg.Get("system", "host-name"); h == nil || h.Key != "one" {
		t.Fatalf("the session's change reached the committed configuration: %q", cfg.Render())
	}
	edit("commit")
	if cfg, _ := s.DB.Committed(); cfg.Get("system") != nil {
		t.Fatalf("second commit: %q", cfg.Render())
	}
}

// TestCommitSteps: each commit that saves a revision reports its steps
// once, with that revision; commit check and a refused commit do not.
func TestCommitSteps(t *testing.T) {
	s, _ := newServer(t, "kmd", "fwdd", "pkid")
	var got []CommitSteps
	s.OnCommit = func(st CommitSteps) { got = append(got, st) }
	if r := run(t, s, "a", "set", "system", "host-name", "gw"); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if r := run(t, s, "a", "commit", "check"); len(r.Errors) > 0 || len(got) != 0 {
		t.Fatalf("commit check: %v, %d reports", r.Errors, len(got))
	}
	if r := run(t, s, "a", "set", "services", "service-set", "ss1", "ipsec-vpn-rules", "nosuch"); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if r := run(t, s, "a", "commit"); len(r.Errors) == 0 || len(got) != 0 {
		t.Fatalf("refused commit: %v, %d reports", r.Lines, len(got))
	}
	run(t, s, "a", "delete", "services")
	r := run(t, s, "a", "commit")
	if len(r.Errors) > 0 || len(got) != 1 || got[0].Revision != r.Revision || r.Revision != 1 {
		t.Fatalf("commit: %v %v, reports %+v", r.Errors, r.Lines, got)
	}
	if st := got[0]; st.Check <= 0 || st.Save <= 0 || st.Acks <= 0 || st.Prepare < 0 || st.Publish < 0 {
		t.Fatalf("steps %+v", st)
	}
}
