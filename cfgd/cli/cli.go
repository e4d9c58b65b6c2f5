// Package cli is the operator's shell: Junos operational and configuration
// mode over the bus. Operational commands go as pb.OpRequest to the daemon
// that owns the data (route.go); configuration mode goes to cfgd as
// pb.ConfigEditRequest. Output modifiers after '|' run here (pipe.go).
//
// Commands come from -c, from standard input (scripts: one command a
// line, configuration mode included), or from a terminal. The exit status
// is 1 when any command failed.
package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/busfile"
)

// Shell is one cli session.
type Shell struct {
	Conn *bus.Conn
	Out  io.Writer
	// Timeout bounds each request; a daemon that is down answers "no
	// responders" at once, one that hangs takes this long.
	Timeout time.Duration

	session    string
	user       string
	configMode bool
	editPath   string
	failed     bool
}

// NewShell returns a shell on conn.
func NewShell(conn *bus.Conn, out io.Writer) *Shell {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	u := os.Getenv("USER")
	if u == "" {
		u = "root"
	}
	return &Shell{Conn: conn, Out: out, Timeout: 5 * time.Second, session: "cli-" + hex.EncodeToString(b), user: u}
}

// Failed reports whether any command of the session failed.
func (s *Shell) Failed() bool { return s.failed }

// Main is the cli command. It returns the process exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cli", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	root := fs.String("root", "", "router root `directory` (finds its bus)")
	busURL := fs.String("bus", "", "NATS `URL` of the router's bus")
	name := fs.String("name", "", "router `name` on the bus (default r0)")
	busRoot := fs.String("bus-root", "", "first token of every bus subject (default sitesec)")
	busCA := fs.String("bus-ca", os.Getenv("SITESEC_BUS_CA"), "CA `file` (PEM) of the bus server's TLS certificate")
	cmd := fs.String("c", "", "run one `command` and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: cli (--root DIR | --bus URL) [-c COMMAND]")
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "cli: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cli: unexpected argument %q (quote the command: -c '...')\n", fs.Arg(0))
		return 2
	}
	conn, err := dial(*root, *busURL, *name, *busRoot, *busCA)
	if err != nil {
		fmt.Fprintf(stderr, "cli: %v\n", err)
		return 1
	}
	defer conn.Close()
	sh := NewShell(conn, stdout)
	ctx := context.Background()
	if *cmd != "" {
		sh.Run(ctx, *cmd)
	} else if f, ok := stdin.(*os.File); ok && isTerminal(stdin) {
		if err := sh.interactive(ctx, f, stdout); err != nil {
			fmt.Fprintf(stderr, "cli: %v\n", err)
			return 1
		}
		return 0
	} else {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if !sh.configMode && (line == "exit" || line == "quit") {
				break
			}
			sh.Run(ctx, line)
		}
	}
	if sh.Failed() {
		return 1
	}
	return 0
}

// banner is the line Junos prints above the configuration-mode prompt.
func (s *Shell) banner() string {
	if !s.configMode {
		return ""
	}
	if s.editPath != "" {
		return "\n" + s.editPath
	}
	return "\n[edit]"
}

func (s *Shell) prompt() string {
	host, _ := os.Hostname()
	if s.configMode {
		return fmt.Sprintf("%s@%s# ", s.user, host)
	}
	return fmt.Sprintf("%s@%s> ", s.user, host)
}

// dial connects as the cli user of the router at root, or to busURL.
func dial(root, busURL, name, busRoot, ca string) (*bus.Conn, error) {
	o := bus.Options{URL: busURL, Name: "cli", ConnectTimeout: 2 * time.Second, CAFile: ca}
	// With --bus, the password comes from the environment, like the
	// daemons' (never the command line, where ps shows it).
	if pw := os.Getenv("SITESEC_BUS_PASSWORD"); busURL != "" && pw != "" {
		o.User, o.Password = os.Getenv("SITESEC_BUS_USER"), pw
		if o.User == "" {
			o.User = subject.CLI
		}
	}
	if busURL == "" {
		if root == "" {
			return nil, errors.New("give --root DIR (a router started with sitesecd --root DIR) or --bus URL")
		}
		in, err := busfile.Read(root)
		if err != nil {
			return nil, err
		}
		o.URL = in.URL
		if o.CAFile == "" {
			o.CAFile = in.CA
		}
		if pw := in.Passwords[subject.CLI]; pw != "" {
			o.User, o.Password = subject.CLI, pw
		}
		if name == "" {
			name = in.Router
		}
		if busRoot == "" {
			busRoot = in.SubjectRoot
		}
	}
	space, err := subject.New(busRoot, name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return bus.Connect(ctx, space, o)
}

// Run executes one command line and prints its output.
func (s *Shell) Run(ctx context.Context, line string) {
	words, pipe, err := splitPipes(line)
	if err != nil {
		s.fail(err.Error())
		return
	}
	if len(words) == 0 {
		return
	}
	if s.configMode {
		s.configCommand(ctx, words, pipe)
		return
	}
	switch {
	case words[0] == "configure":
		s.configMode = true
		s.editPath = ""
		fmt.Fprintln(s.Out, "Entering configuration mode")
		return
	case len(words) >= 2 && words[0] == "monitor" && words[1] == "bus":
		if err := s.monitorBus(ctx, words[2:]); err != nil {
			s.fail(err.Error())
		}
		return
	case words[0] == "show" && len(words) == 1:
		s.fail("syntax error, expecting <command>.")
		return
	}
	s.op(ctx, words, pipe)
}

// op sends an operational command to its daemon and prints the reply.
func (s *Shell) op(ctx context.Context, words []string, pipe *pipeline) {
	daemon, ok := route(words)
	if !ok {
		s.fail(fmt.Sprintf("syntax error: %s", strings.Join(words, " ")))
		return
	}
	req := &pb.OpRequest{User: s.user, Display: pipe.display}
	req.Words, req.SecretArgument = splitSecret(words)
	if daemon == subject.Pkid {
		if err := attachFiles(req); err != nil {
			s.fail(err.Error())
			return
		}
	}
	rep, err := s.request(ctx, daemon, req)
	if err != nil && daemon == subject.Sitesecd && isNoResponders(err) && strings.Join(words, " ") == "show system processes" {
		// No launcher (docker compose): ask each daemon for itself.
		rep, err = s.collectProcesses(ctx), nil
	}
	if err != nil {
		s.fail(err.Error())
		return
	}
	if rep.ConfirmQuestion != "" {
		// Scripts cannot answer; the daemon explains what to add.
		fmt.Fprintln(s.Out, rep.ConfirmQuestion)
	}
	if rep.Error == "" {
		if err := saveFile(rep); err != nil {
			rep.Error = err.Error()
		}
	}
	s.print(rep, pipe)
	if rep.Error != "" {
		s.fail(rep.Error)
	}
}

func (s *Shell) request(ctx context.Context, daemon string, req *pb.OpRequest) (*pb.OpReply, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout(req))
	defer cancel()
	var rep pb.OpReply
	if err := s.Conn.Request(ctx, daemon, subject.VerbOp, req, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// timeout is longer for commands that wait on something slow (a restart,
// an enrollment).
func (s *Shell) timeout(req *pb.OpRequest) time.Duration {
	if len(req.Words) > 0 && (req.Words[0] == "restart" || req.Words[0] == "request") {
		return 30 * time.Second
	}
	return s.Timeout
}

func isNoResponders(err error) bool {
	return err != nil && strings.Contains(err.Error(), "answers on")
}

// collectProcesses builds `show system processes` from the daemons' own
// status replies when no launcher runs.
func (s *Shell) collectProcesses(ctx context.Context) *pb.OpReply {
	pl := &pb.ProcessList{Router: s.Conn.Space.Router, Bus: "external", BusServerVersion: s.Conn.ServerVersion()}
	for _, d := range subject.Daemons {
		var st pb.ProcessStatus
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.Conn.Request(c, d, subject.VerbStatus, &pb.StatusRequest{}, &st)
		cancel()
		if err != nil {
			st = pb.ProcessStatus{Name: d, State: pb.DaemonState_DAEMON_STATE_STOPPED, BusStatus: "not answering"}
		}
		pl.Processes = append(pl.Processes, &st)
	}
	return &pb.OpReply{Body: &pb.OpReply_Processes{Processes: pl}}
}

func (s *Shell) print(rep *pb.OpReply, pipe *pipeline) {
	var lines []string
	switch pipe.display {
	case "json":
		lines = strings.Split(renderDisplayJSON(rep), "\n")
	case "xml":
		lines = strings.Split(renderXML(replyTree(rep)), "\n")
	default:
		lines = renderText(rep)
	}
	for _, l := range pipe.apply(lines) {
		fmt.Fprintln(s.Out, l)
	}
}

// configCommand runs one configuration-mode command in cfgd.
func (s *Shell) configCommand(ctx context.Context, words []string, pipe *pipeline) {
	switch {
	case words[0] == "run":
		s.op(ctx, words[1:], pipe)
		return
	case (words[0] == "exit" || words[0] == "quit") && (len(words) == 1 && s.editPath == "" || len(words) == 2 && words[1] == "configuration-mode"):
		s.configMode = false
		s.editPath = ""
		fmt.Fprintln(s.Out, "Exiting configuration mode")
		return
	}
	req := &pb.ConfigEditRequest{Session: s.session, Words: words, User: s.user}
	xml := pipe.display == "xml" && words[0] == "show"
	if pipe.display == "set" || xml {
		// | display xml: cfgd answers set lines, the cli prints them
		// as XML (configxml.go).
		req.Words = append(req.Words, "|", "display", "set")
	}
	if pipe.compare != nil {
		req.Words = append(append(req.Words, "|"), pipe.compare...)
	}
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rep := &pb.ConfigEditReply{}
	if isLoadFile(words) {
		r, err := s.loadFile(c, words)
		if err != nil {
			s.fail(err.Error())
			return
		}
		rep = r
	} else if err := s.Conn.Request(c, subject.Cfgd, subject.VerbConfig, req, rep); err != nil {
		s.fail(err.Error())
		return
	}
	s.editPath = rep.EditPath
	var lines []string
	lines = append(lines, renderConfigErrors(rep.Errors)...)
	if xml && len(rep.Errors) == 0 {
		banner := rep.EditPath
		if banner == "" {
			banner = "[edit]"
		}
		set := rep.Lines
		if rep.Reply != nil {
			set = append(set, renderText(rep.Reply)...)
		}
		text, err := configXML(set, banner)
		if err != nil {
			s.fail(err.Error())
			return
		}
		rep.Lines, rep.Reply = strings.Split(text, "\n"), nil
	}
	lines = append(lines, rep.Lines...)
	if rep.Reply != nil {
		lines = append(lines, renderText(rep.Reply)...)
	}
	for _, l := range pipe.apply(lines) {
		fmt.Fprintln(s.Out, l)
	}
	// The commit is durable, but a daemon that could not apply it makes
	// the command fail, so a script notices.
	for _, a := range rep.Acks {
		if !a.GetOk() {
			s.failed = true
		}
	}
	if len(rep.Errors) > 0 || (rep.Reply != nil && rep.Reply.Error != "") {
		s.failed = true
		if rep.Reply != nil && rep.Reply.Error != "" {
			fmt.Fprintln(s.Out, "error: "+rep.Reply.Error)
		}
	}
}

func (s *Shell) fail(msg string) {
	s.failed = true
	fmt.Fprintln(s.Out, "error: "+msg)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// splitSecret takes the value of challenge-password out of an operational
// command: it travels in OpRequest.secret_argument, which no trace or bus
// dump shows, and the keyword stays in the words.
func splitSecret(words []string) ([]string, string) {
	for i, w := range words {
		if w == "challenge-password" && i+1 < len(words) {
			out := append(append([]string(nil), words[:i+1]...), words[i+2:]...)
			return out, words[i+1]
		}
	}
	return words, ""
}
