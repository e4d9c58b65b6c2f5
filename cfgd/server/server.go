// Package server is the cfgd daemon: configuration mode (Edit, served on
// <root>.<router>.cfgd.config), the operational commands cfgd owns (Op:
// show configuration, show system commit), and distribution of each
// commit to the daemons through the JetStream KV bucket, collecting their
// ApplyAck for a bounded time.
//
// Every session (ConfigEditRequest.session) has its own candidate, copied
// from the committed configuration when the session starts, like Junos
// "configure private". A commit from a session whose candidate was based
// on an older revision than the committed one is refused with
// "configuration database modified"; `rollback 0` or `update` starts over
// from the committed configuration.
package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/cfgd/check"
	"github.com/sitesec/sitesec/cfgd/conf"
	"github.com/sitesec/sitesec/cfgd/db"
	"github.com/sitesec/sitesec/cfgd/schema"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/opfile"
	"github.com/sitesec/sitesec/services/plan"
)

// Publisher stores a committed snapshot in the configuration bucket
// (bus.Conn.PutConfig).
type Publisher interface {
	PutConfig(ctx context.Context, s *pb.ConfigSnapshot) error
}

// Requester sends the prepare round's requests (bus.Conn.Request).
type Requester interface {
	Request(ctx context.Context, daemon, verb string, req, rep proto.Message) error
}

// PrepareWait bounds how long the prepare round waits for a daemon with
// a small candidate; prepareWait adds PrepareWaitPerMiB for each MiB of
// it (a 10,000-service-set candidate is about 8 MiB, sent in parts: the
// daemon receives, decodes and checks it all).
const (
	PrepareWait       = 3 * time.Second
	PrepareWaitPerMiB = time.Second
)

// prepareWait is how long the prepare round waits for the daemon that is
// sent s.
func prepareWait(s *pb.ConfigSnapshot) time.Duration {
	return PrepareWait + time.Duration(proto.Size(s)>>20)*PrepareWaitPerMiB
}

// DefaultAckWait bounds how long commit waits for the daemons.
const DefaultAckWait = 5 * time.Second

// healthTTL is how long a daemon counts as running after its last Health
// (the runtime publishes one every 2 s).
const healthTTL = 7 * time.Second

// sessionTTL drops an idle session's candidate.
const sessionTTL = 24 * time.Hour

// Server holds the commit database and the editing sessions.
type Server struct {
	DB  *db.DB
	Pub Publisher
	// Req, when set, runs the prepare round of commit and commit check
	// (New takes it from Pub when Pub can send requests).
	Req     Requester
	Now     func() time.Time
	AckWait time.Duration
	// Self is the name cfgd's own acknowledgements come under; it is not
	// waited for (cfgd answers commit only after publishing).
	Self string
	// OnCommit, when set, is told how long each step of a commit took
	// (cfgd traces it: issue 15 goal 4 is commit to first packet).
	OnCommit func(CommitSteps)

	mu       sync.Mutex
	sessions map[string]*session
	alive    map[string]time.Time // daemon -> last Health
	acks     map[uint64][]*pb.ApplyAck
	ackCh    chan struct{} // closed and replaced on each ack
}

// CommitSteps is the time each step of one commit took.
type CommitSteps struct {
	Revision uint64
	// Check is the checks, the conversion and the plan; Prepare the
	// prepare round; Save writing the revision (fsyncs); Publish storing
	// it in the bucket; Acks waiting for the daemons' acknowledgements.
	Check, Prepare, Save, Publish, Acks time.Duration
}

type session struct {
	mu   sync.Mutex // one command at a time
	cand *conf.Node
	// shared: cand is the committed configuration itself (DB.CommitOwned),
	// read only; own copies it before a change.
	shared bool
	base   uint64     // committed revision the candidate started from
	at     [][]string // edit levels
	used   time.Time
	// pieces of a load FILE sent in several requests (ConfigEditRequest.more)
	pending     []byte
	pendingFile string
}

// MaxLoad bounds the text of one load, all pieces together (the cli reads
// at most as much: services/opfile.MaxConfig).
const MaxLoad = opfile.MaxConfig

// New returns a Server over an open database.
func New(d *db.DB, pub Publisher) *Server {
	s := &Server{DB: d, Pub: pub, Now: time.Now, AckWait: DefaultAckWait, Self: "cfgd",
		sessions: map[string]*session{}, alive: map[string]time.Time{},
		acks: map[uint64][]*pb.ApplyAck{}, ackCh: make(chan struct{})}
	if r, ok := pub.(Requester); ok {
		s.Req = r
	}
	return s
}

// Health records a daemon's heartbeat: running daemons are the ones a
// commit waits for.
func (s *Server) Health(h *pb.Health) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.GetState() == pb.DaemonState_DAEMON_STATE_RUNNING {
		s.alive[h.GetDaemon()] = s.Now()
	} else {
		delete(s.alive, h.GetDaemon())
	}
}

// Ack records a daemon's ApplyAck.
func (s *Server) Ack(a *pb.ApplyAck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks[a.GetRevision()] = append(s.acks[a.GetRevision()], a)
	for r := range s.acks {
		if r+100 < a.GetRevision() {
			delete(s.acks, r)
		}
	}
	close(s.ackCh)
	s.ackCh = make(chan struct{})
}

// Publish sends the committed configuration to the bucket. cfgd calls it
// at start too, so daemons find the configuration after a full restart.
func (s *Server) Publish(ctx context.Context) error {
	cfg, m := s.DB.Committed()
	if m.Revision == 0 || s.Pub == nil {
		return nil
	}
	return s.publish(ctx, cfg, m)
}

func (s *Server) publish(ctx context.Context, cfg *conf.Node, m db.Meta) error {
	c, err := conf.ToPB(cfg)
	if err != nil {
		return err
	}
	// A rolled-back revision was checked when committed: its plan
	// resolves (errors would leave its broken parts out).
	c.Plan, _ = plan.Resolve(c)
	return s.publishPB(ctx, c, m)
}

// publishPB is publish of a configuration already converted (by commit's
// check: a 10,000-service-set configuration is not converted twice).
func (s *Server) publishPB(ctx context.Context, c *pb.Config, m db.Meta) error {
	return s.Pub.PutConfig(ctx, &pb.ConfigSnapshot{
		Revision: m.Revision, CommittedAt: timestamppb.New(m.Time), CommittedBy: m.User,
		Comment: m.Comment, ConfirmMinutes: m.ConfirmMinutes, Config: c,
	})
}

// OnRollback is the db.Options.OnRollback hook: an unconfirmed commit
// was rolled back, so the daemons get the previous configuration.
func (s *Server) OnRollback(m db.Meta, cfg *conf.Node) {
	if s.Pub != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.publish(ctx, cfg, m)
	}
}

// running returns the daemons with a recent Health, cfgd itself excepted.
func (s *Server) running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var want []string
	now := s.Now()
	for d, t := range s.alive {
		if d != s.Self && now.Sub(t) < healthTTL {
			want = append(want, d)
		}
	}
	slices.Sort(want)
	return want
}

// prepare is the prepare round of a commit (Junos commits are one
// transaction): every running daemon is sent the candidate and says what
// of it it could not run. It returns those refusals as configuration
// errors, and warnings for daemons that did not answer.
func (s *Server) prepare(ctx context.Context, c *pb.Config) ([]*pb.ConfigError, []string) {
	if s.Req == nil {
		return nil, nil
	}
	cur := s.DB.Meta()
	snap := &pb.ConfigSnapshot{Revision: cur.Revision + 1, Config: c}
	daemons := s.running()
	acks := make([]*pb.ApplyAck, len(daemons))
	errs := make([]error, len(daemons))
	// Each daemon sees its own secrets only.
	own, err := bus.ForDaemons(snap, daemons)
	if err != nil {
		return []*pb.ConfigError{{Message: err.Error()}}, nil
	}
	var wg sync.WaitGroup
	for i, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, prepareWait(own[d]))
			defer cancel()
			acks[i] = &pb.ApplyAck{}
			errs[i] = s.Req.Request(pctx, d, subject.VerbPrepare, own[d], acks[i])
		}()
	}
	wg.Wait()
	var out []*pb.ConfigError
	var warn []string
	for i, d := range daemons {
		if errs[i] != nil {
			warn = append(warn, fmt.Sprintf("warning: %s did not answer the commit's prepare round: %v", d, errs[i]))
			continue
		}
		for _, e := range acks[i].GetErrors() {
			out = append(out, daemonError(d, e))
		}
		if !acks[i].GetOk() && len(acks[i].GetErrors()) == 0 {
			out = append(out, &pb.ConfigError{Message: d + ": cannot run this configuration"})
		}
	}
	return out, warn
}

// daemonError turns a daemon's "[edit PATH] message" into a configuration
// error naming the statement's hierarchy and the daemon.
func daemonError(d, e string) *pb.ConfigError {
	if strings.HasPrefix(e, "[edit ") {
		if i := strings.Index(e, "] "); i > 0 {
			return &pb.ConfigError{Path: e[:i+1], Message: d + ": " + e[i+2:]}
		}
	}
	return &pb.ConfigError{Message: d + ": " + e}
}

// waitAcks waits until every running daemon acknowledged rev, or ctx or
// AckWait ends, and returns the acks and the daemons that did not answer.
func (s *Server) waitAcks(ctx context.Context, rev uint64) ([]*pb.ApplyAck, []string) {
	wait := s.AckWait
	if dl, ok := ctx.Deadline(); ok {
		// Answer before the caller gives up: an answer after its deadline
		// is dropped, and the commit would look failed although it is done.
		left := time.Until(dl)
		if margin := left / 5; left-margin < wait {
			wait = left - margin
		}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		s.mu.Lock()
		var want []string
		now := s.Now()
		for d, t := range s.alive {
			if d != s.Self && now.Sub(t) < healthTTL {
				want = append(want, d)
			}
		}
		got := slices.Clone(s.acks[rev])
		ch := s.ackCh
		s.mu.Unlock()
		var missing []string
		for _, d := range want {
			if !slices.ContainsFunc(got, func(a *pb.ApplyAck) bool { return a.GetDaemon() == d }) {
				missing = append(missing, d)
			}
		}
		slices.Sort(missing)
		slices.SortFunc(got, func(a, b *pb.ApplyAck) int { return strings.Compare(a.GetDaemon(), b.GetDaemon()) })
		if len(missing) == 0 {
			return got, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, missing
		}
	}
}

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	for k, x := range s.sessions {
		if now.Sub(x.used) > sessionTTL {
			delete(s.sessions, k)
		}
	}
	x := s.sessions[id]
	if x == nil {
		cfg, m := s.DB.Committed()
		x = &session{cand: cfg, base: m.Revision}
		s.sessions[id] = x
	}
	x.used = now
	return x
}

// own makes cand the session's own copy before a change, if it is the
// committed configuration itself.
func (x *session) own() {
	if x.shared {
		x.cand, x.shared = x.cand.Clone(), false
	}
}

func (x *session) path() []string {
	var p []string
	for _, l := range x.at {
		p = append(p, l...)
	}
	return p
}

func (x *session) editPath() string {
	if len(x.at) == 0 {
		return ""
	}
	n := x.cand.Get(x.path()...)
	if n == nil {
		return "[edit " + strings.Join(x.path(), " ") + "]"
	}
	return n.EditPath()
}

// configErrors converts parse and check errors for the reply.
func configErrors(err error) []*pb.ConfigError {
	var es conf.Errors
	var e *conf.Error
	switch {
	case errors.As(err, &es):
	case errors.As(err, &e):
		es = conf.Errors{e}
	default:
		return []*pb.ConfigError{{Message: err.Error()}}
	}
	var out []*pb.ConfigError
	for _, e := range es {
		msg := e.Msg
		if e.Syntax {
			msg = "syntax error: " + msg
		}
		out = append(out, &pb.ConfigError{Path: e.Path, File: e.Pos.File, Line: uint32(e.Pos.Line),
			Column: uint32(e.Pos.Col), Message: msg, Statement: e.Stmt})
	}
	return out
}

func fail(rep *pb.ConfigEditReply, err error) *pb.ConfigEditReply {
	rep.Errors = append(rep.Errors, configErrors(err)...)
	return rep
}

func failMsg(rep *pb.ConfigEditReply, format string, a ...any) *pb.ConfigEditReply {
	rep.Errors = append(rep.Errors, &pb.ConfigError{Message: fmt.Sprintf(format, a...)})
	return rep
}

// pipes splits a trailing "| display set" or "| compare [rollback N]"
// from the words.
func pipes(words []string) (cmd []string, display string, compare bool, against int, err error) {
	i := slices.Index(words, "|")
	if i < 0 {
		return words, "", false, 0, nil
	}
	cmd, rest := words[:i], words[i+1:]
	for len(rest) > 0 {
		switch {
		case len(rest) >= 2 && rest[0] == "display":
			display = rest[1]
			rest = rest[2:]
		case rest[0] == "compare":
			compare = true
			rest = rest[1:]
			if len(rest) >= 2 && rest[0] == "rollback" {
				n, err := strconv.Atoi(rest[1])
				if err != nil {
					return nil, "", false, 0, fmt.Errorf("invalid rollback number: %s", rest[1])
				}
				against = n
				rest = rest[2:]
			}
		case rest[0] == "|":
			rest = rest[1:]
		default:
			return nil, "", false, 0, fmt.Errorf("syntax error: '%s' after '|'", rest[0])
		}
	}
	return cmd, display, compare, against, nil
}

// Edit runs one configuration-mode command. Word forms (README.md):
//
//	set|delete|activate|deactivate STATEMENT... | insert STATEMENT (before|after) REF
//	edit PATH... | up [N] | top [COMMAND...] | exit
//	show [PATH...] [| display set] | show | compare [rollback N] | compare [rollback N]
//	load merge|override|replace|set terminal|FILE [relative]   (terminal: req.text)
//	annotate STATEMENT TEXT
//	commit [check] [confirmed [MINUTES]] [comment TEXT] [and-quit]
//	rollback [N] | update | status | complete WORDS... PARTIAL
func (s *Server) Edit(ctx context.Context, req *pb.ConfigEditRequest) *pb.ConfigEditReply {
	rep := &pb.ConfigEditReply{}
	x := s.session(req.GetSession())
	x.mu.Lock()
	defer x.mu.Unlock()
	defer func() { rep.EditPath = x.editPath() }()
	words, display, compare, against, err := pipes(req.GetWords())
	if err != nil {
		return failMsg(rep, "%v", err)
	}
	if len(words) == 0 {
		return rep
	}
	if words[0] == "top" && len(words) > 1 {
		saved := x.at
		x.at = nil
		defer func() {
			if x.at == nil {
				x.at = saved
			}
		}()
		words = words[1:]
	}
	switch words[0] {
	case "set", "delete", "activate", "deactivate", "insert", "annotate":
		x.own()
		if err := conf.Run(x.cand, x.path(), words); err != nil {
			return fail(rep, err)
		}
	case "edit":
		segs, err := conf.Resolve(x.cand, append(x.path(), words[1:]...))
		if err != nil {
			return fail(rep, err)
		}
		x.at = segs
	case "up", "exit":
		n := 1
		if words[0] == "up" && len(words) > 1 {
			if n, err = strconv.Atoi(words[1]); err != nil || n < 1 {
				return failMsg(rep, "invalid number of levels: %s", words[1])
			}
		}
		if words[0] == "exit" && (len(x.at) == 0 || slices.Contains(words, "configuration-mode")) {
			s.mu.Lock()
			delete(s.sessions, req.GetSession())
			s.mu.Unlock()
			rep.Lines = append(rep.Lines, "Exiting configuration mode")
			x.at = nil
			return rep
		}
		x.at = x.at[:max(0, len(x.at)-n)]
	case "top":
		x.at = nil
	case "show", "compare":
		if words[0] == "compare" {
			compare = true
			if len(words) >= 3 && words[1] == "rollback" {
				if against, err = strconv.Atoi(words[2]); err != nil {
					return failMsg(rep, "invalid rollback number: %s", words[2])
				}
			}
			words = words[:1]
		}
		return s.show(rep, x, words[1:], display, compare, against)
	case "load":
		return s.load(rep, x, req, words)
	case "rollback":
		n := 0
		if len(words) > 1 {
			if n, err = strconv.Atoi(words[1]); err != nil || n < 0 || n >= db.Keep {
				return failMsg(rep, "invalid rollback number: %s (0..%d)", words[1], db.Keep-1)
			}
		}
		cfg, err := s.DB.Rollback(n)
		if err != nil {
			return failMsg(rep, "%v", err)
		}
		x.cand, x.shared = cfg, false
		if n == 0 {
			x.base = s.DB.Meta().Revision
		}
		rep.Lines = append(rep.Lines, "load complete")
	case "update":
		cfg, m := s.DB.Committed()
		x.cand, x.shared, x.base = cfg, false, m.Revision
		rep.Lines = append(rep.Lines, "configuration updated to revision "+strconv.FormatUint(m.Revision, 10)+"; uncommitted changes discarded")
	case "status":
		s.mu.Lock()
		rep.Lines = append(rep.Lines, fmt.Sprintf("Users currently editing the configuration: %d sessions", len(s.sessions)))
		s.mu.Unlock()
	case "commit":
		return s.commit(ctx, rep, x, req, words[1:])
	case "complete":
		// complete STATEMENT-WORDS... PARTIAL: one "word<TAB>help" line per
		// candidate, configured names included for references.
		cs, err := schema.CompleteWith(x.path(), words[1:], func(ref string) []string { return conf.Names(x.cand, ref) })
		if err != nil {
			return failMsg(rep, "%v", err)
		}
		for _, c := range cs {
			rep.Lines = append(rep.Lines, c.Word+"\t"+c.Help)
		}
	default:
		return failMsg(rep, "syntax error: '%s' (expecting set, delete, activate, deactivate, edit, up, top, exit, show, compare, load, commit, rollback, update)", words[0])
	}
	return rep
}

func (s *Server) show(rep *pb.ConfigEditReply, x *session, path []string, display string, compare bool, against int) *pb.ConfigEditReply {
	if compare {
		old, err := s.DB.Rollback(against)
		if err != nil {
			return failMsg(rep, "%v", err)
		}
		rep.Reply = &pb.OpReply{Body: &pb.OpReply_ConfigText{ConfigText: &pb.ConfigText{Text: conf.Diff(old.Masked(), x.cand.Masked())}}}
		return rep
	}
	n := x.cand.Get(append(x.path(), path...)...)
	if n != nil {
		n = n.Masked()
	}
	var text string
	switch {
	case n == nil:
		text = ""
	case display == "set" && n.Parent == nil:
		text = n.RenderSet()
	case display == "set":
		text = renderSetOf(n)
	default:
		text = renderAt(n)
	}
	rep.Reply = &pb.OpReply{Body: &pb.OpReply_ConfigText{ConfigText: &pb.ConfigText{Text: text}}}
	return rep
}

// renderAt is `show` at a level: the statements inside a container or
// list entry, or the statement itself for a leaf.
func renderAt(n *conf.Node) string {
	if k := n.Schema.Kind; k == schema.Container || k == schema.List {
		return n.Render()
	}
	return n.RenderNode()
}

// renderSetOf renders the set commands of node n and everything below it.
func renderSetOf(n *conf.Node) string {
	root := conf.New()
	// Re-home a copy so the paths come out whole.
	c := n.Clone()
	var wrap func(orig, copy *conf.Node) *conf.Node
	wrap = func(orig, cp *conf.Node) *conf.Node {
		if orig.Parent == nil {
			return cp
		}
		p := &conf.Node{Schema: orig.Parent.Schema, Key: orig.Parent.Key}
		p.Children = []*conf.Node{cp}
		cp.Parent = p
		return wrap(orig.Parent, p)
	}
	top := wrap(n, c)
	root.Children = top.Children
	for _, ch := range root.Children {
		ch.Parent = root
	}
	return root.RenderSet()
}

func (s *Server) load(rep *pb.ConfigEditReply, x *session, req *pb.ConfigEditRequest, words []string) *pb.ConfigEditReply {
	if len(words) < 3 {
		return failMsg(rep, "syntax error: expecting load (merge|override|replace|set) (terminal|FILE)")
	}
	mode, src := words[1], words[2]
	if !slices.Contains([]string{"merge", "override", "replace", "set"}, mode) {
		return failMsg(rep, "syntax error: '%s' (expecting merge, override, replace or set)", mode)
	}
	text, file := req.GetText(), req.GetFile()
	// Pieces of one file: each must continue the previous one.
	if req.GetMore() || req.GetOffset() > 0 {
		if req.GetOffset() != uint64(len(x.pending)) || (req.GetOffset() > 0 && file != x.pendingFile) {
			x.pending, x.pendingFile = nil, ""
			return failMsg(rep, "load %s: piece at offset %d does not follow the %d bytes received", src, req.GetOffset(), len(x.pending))
		}
		if len(x.pending)+len(text) > MaxLoad {
			x.pending, x.pendingFile = nil, ""
			return failMsg(rep, "load %s: more than %d bytes", src, MaxLoad)
		}
		x.pending, x.pendingFile = append(x.pending, text...), file
		if req.GetMore() {
			return rep
		}
		text = string(x.pending)
		x.pending, x.pendingFile = nil, ""
	}
	if len(text) > MaxLoad {
		return failMsg(rep, "load %s: more than %d bytes", src, MaxLoad)
	}
	if src == "terminal" {
		if file == "" {
			file = "terminal"
		}
	} else if file == "" && text == "" {
		// cfgd runs as root: it never opens a file the operator names
		// (issue 14 item 5). The cli reads it with the operator's own
		// permissions and sends the text.
		return failMsg(rep, "load %s: cfgd does not read files; the cli sends their content", src)
	} else if file == "" {
		file = src
	}
	var at []string
	if slices.Contains(words[3:], "relative") {
		at = x.path()
	}
	cfg, err := conf.LoadAt(x.cand, at, mode, file, text)
	if err != nil {
		fail(rep, err)
		rep.Lines = append(rep.Lines, fmt.Sprintf("load complete (%d errors)", len(rep.Errors)))
		return rep
	}
	x.cand, x.shared = cfg, false
	if mode == "override" {
		x.at = nil
	}
	rep.Lines = append(rep.Lines, "load complete")
	return rep
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Validate runs every check on cfg and the conversion the daemons need.
func Validate(cfg *conf.Node) error {
	_, err := validate(cfg)
	return err
}

// validate is Validate returning the conversion, with its plan resolved
// (services/plan): a configuration whose plan does not resolve fails the
// check, and the daemons get the plan with the configuration.
func validate(cfg *conf.Node) (*pb.Config, error) {
	if errs := check.Run(cfg); len(errs) > 0 {
		return nil, errs
	}
	c, err := conf.ToPB(cfg)
	if err != nil {
		return nil, err
	}
	p, errs := plan.Resolve(c)
	if len(errs) > 0 {
		return nil, planErrors(errs)
	}
	c.Plan = p
	return c, nil
}

func (s *Server) commit(ctx context.Context, rep *pb.ConfigEditReply, x *session, req *pb.ConfigEditRequest, args []string) *pb.ConfigEditReply {
	var checkOnly, andQuit bool
	var confirm uint32
	var comment string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "check":
			checkOnly = true
		case "and-quit":
			andQuit = true
		case "synchronize":
		case "confirmed":
			confirm = 10 // Junos default
			if i+1 < len(args) {
				if n, err := strconv.ParseUint(args[i+1], 10, 32); err == nil {
					if n < 1 || n > 65535 {
						return failMsg(rep, "Value %d is not within range (1..65535)", n)
					}
					confirm = uint32(n)
					i++
				}
			}
		case "comment":
			if i+1 >= len(args) {
				return failMsg(rep, "syntax error: missing text after 'comment'")
			}
			comment = args[i+1]
			i++
		default:
			return failMsg(rep, "syntax error: '%s' (expecting check, confirmed, comment, and-quit)", args[i])
		}
	}
	var steps CommitSteps
	t0 := time.Now()
	lap := func(d *time.Duration) {
		now := time.Now()
		*d, t0 = now.Sub(t0), now
	}
	converted, err := validate(x.cand)
	if err != nil {
		fail(rep, err)
		rep.Lines = append(rep.Lines, "error: configuration check-out failed")
		return rep
	}
	rep.Lines = append(rep.Lines, check.FormatWarnings(check.Warnings(x.cand))...)
	lap(&steps.Check)
	refused, warn := s.prepare(ctx, converted)
	lap(&steps.Prepare)
	rep.Lines = append(rep.Lines, warn...)
	if len(refused) > 0 {
		rep.Errors = append(rep.Errors, refused...)
		rep.Lines = append(rep.Lines, "error: configuration check-out failed")
		return rep
	}
	if checkOnly {
		// Junos: commit check also confirms a pending commit confirmed.
		if ok, _ := s.DB.Confirm(); ok {
			rep.Lines = append(rep.Lines, "commit confirmed")
		}
		rep.Lines = append(rep.Lines, "configuration check succeeds")
		return rep
	}
	cur := s.DB.Meta()
	if x.base != cur.Revision {
		return failMsg(rep, "configuration database modified: revision %d was committed after this session started editing revision %d; use 'update' or 'rollback 0' to start from it (uncommitted changes are discarded)", cur.Revision, x.base)
	}
	prev, _ := s.DB.View() // read only: revert commits it again
	m, err := s.DB.CommitOwned(x.cand, db.Meta{User: req.GetUser(), Client: "cli", Comment: comment, ConfirmMinutes: confirm})
	if err != nil {
		return failMsg(rep, "commit failed: %v", err)
	}
	lap(&steps.Save)
	steps.Revision = m.Revision
	if s.OnCommit != nil {
		defer func() { s.OnCommit(steps) }()
	}
	x.shared = true
	x.base = m.Revision
	rep.Revision = m.Revision
	if s.Pub != nil {
		err := s.publishPB(ctx, converted, m)
		lap(&steps.Publish)
		if err != nil {
			rep.Lines = append(rep.Lines, fmt.Sprintf("warning: revision %d is committed but was not sent to the daemons: %v", m.Revision, err))
		} else {
			acks, missing := s.waitAcks(ctx, m.Revision)
			lap(&steps.Acks)
			rep.Acks = acks
			failed := false
			for _, a := range acks {
				for _, e := range a.GetErrors() {
					rep.Lines = append(rep.Lines, fmt.Sprintf("error: %s: %s", a.GetDaemon(), e))
				}
				for _, w := range a.GetWarnings() {
					rep.Lines = append(rep.Lines, fmt.Sprintf("warning: %s: %s", a.GetDaemon(), w))
				}
				failed = failed || !a.GetOk()
			}
			for _, d := range missing {
				rep.Lines = append(rep.Lines, fmt.Sprintf("warning: %s did not report applying revision %d in time", d, m.Revision))
			}
			if failed {
				// A daemon could not apply what it accepted in the prepare
				// round: every daemon goes back to the previous
				// configuration, committed again as a new revision.
				return s.revert(ctx, rep, x, req, prev, m)
			}
		}
	}
	if confirm > 0 {
		rep.Lines = append(rep.Lines, fmt.Sprintf("commit confirmed will be automatically rolled back in %d minutes unless confirmed", confirm))
	}
	rep.Lines = append(rep.Lines, "commit complete")
	if andQuit {
		rep.Lines = append(rep.Lines, "Exiting configuration mode")
		s.mu.Lock()
		delete(s.sessions, req.GetSession())
		s.mu.Unlock()
	}
	return rep
}

// revert commits prev again after revision failed was not applied by
// every daemon, sends it to the daemons and reports the commit as failed.
func (s *Server) revert(ctx context.Context, rep *pb.ConfigEditReply, x *session, req *pb.ConfigEditRequest, prev *conf.Node, failed db.Meta) *pb.ConfigEditReply {
	m, err := s.DB.Commit(prev, db.Meta{User: req.GetUser(), Client: "cfgd", Comment: fmt.Sprintf("revision %d not applied: reverted", failed.Revision)})
	if err != nil {
		return failMsg(rep, "revision %d was not applied and could not be reverted: %v", failed.Revision, err)
	}
	x.base = m.Revision
	rep.Revision = m.Revision
	// prev is read only and may be a session's candidate too (looking it
	// up builds indexes): the conversion reads a copy of its own.
	again, _ := s.DB.Committed()
	if err := s.publish(ctx, again, m); err != nil {
		return failMsg(rep, "revision %d was not applied; the previous configuration, committed again as revision %d, was not sent to the daemons: %v", failed.Revision, m.Revision, err)
	}
	acks, missing := s.waitAcks(ctx, m.Revision)
	for _, a := range acks {
		for _, e := range a.GetErrors() {
			rep.Lines = append(rep.Lines, fmt.Sprintf("error: %s: reverting: %s", a.GetDaemon(), e))
		}
	}
	for _, d := range missing {
		rep.Lines = append(rep.Lines, fmt.Sprintf("warning: %s did not report applying revision %d in time", d, m.Revision))
	}
	rep.Lines = append(rep.Lines, fmt.Sprintf("error: commit failed: revision %d was not applied by every daemon; the previous configuration is running again (revision %d); the candidate is kept", failed.Revision, m.Revision))
	return failMsg(rep, "commit failed: revision %d not applied, reverted as revision %d", failed.Revision, m.Revision)
}

// Op answers the operational commands cfgd owns.
func (s *Server) Op(ctx context.Context, req *pb.OpRequest) *pb.OpReply {
	w := req.GetWords()
	line := strings.Join(w, " ")
	switch {
	case line == "show system commit":
		var h pb.CommitHistory
		for i, m := range s.DB.History() {
			h.Entries = append(h.Entries, &pb.CommitHistory_Entry{Index: uint32(i), UnixTime: m.Time.Unix(),
				User: m.User, Client: m.Client, Comment: m.Comment, Revision: m.Revision})
		}
		return &pb.OpReply{Body: &pb.OpReply_CommitHistory{CommitHistory: &h}}
	case len(w) >= 2 && w[0] == "show" && w[1] == "configuration":
		cfg, _ := s.DB.Committed()
		cfg = cfg.Masked()
		path := w[2:]
		var text string
		if req.GetDisplay() == "set" {
			if n := cfg.Get(path...); n != nil {
				if len(path) == 0 {
					text = n.RenderSet()
				} else {
					text = renderSetOf(n)
				}
			}
		} else if n := cfg.Get(path...); n != nil {
			text = renderAt(n)
		}
		return &pb.OpReply{Body: &pb.OpReply_ConfigText{ConfigText: &pb.ConfigText{Text: text}}}
	}
	return &pb.OpReply{Error: "syntax error: " + line}
}

// planErrors turns the plan's errors into configuration errors with their
// hierarchy paths.
func planErrors(errs []error) conf.Errors {
	var out conf.Errors
	for _, err := range errs {
		var pe *plan.Error
		if errors.As(err, &pe) {
			out = append(out, &conf.Error{Path: "[edit " + pe.Path + "]", Msg: pe.Msg})
		} else {
			out = append(out, &conf.Error{Msg: err.Error()})
		}
	}
	return out
}
