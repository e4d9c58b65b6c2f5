package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/proto/pb"
)

// Restart policy. A daemon that exits is started again after a backoff
// that starts at minBackoff and doubles up to maxBackoff; a daemon that ran
// for at least stableAfter starts over at minBackoff. More than crashLimit
// exits within crashWindow marks it failed: the launcher stops restarting
// it and `show system processes` says so until `restart <daemon>`.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
	stableAfter = 10 * time.Second
	crashLimit  = 5
	crashWindow = 60 * time.Second
	stopTimeout = 5 * time.Second
)

// process supervises one daemon. Its goroutine (run) owns cmd; the fields
// under mu are read by status queries.
type process struct {
	name string
	path string
	args []string
	env  []string
	// credential is the daemon's bus password, written on a fresh pipe
	// at every start (descriptor 3 of the child, daemon.EnvCredentialFD).
	credential string
	out        io.Writer
	l          *Launcher

	mu         sync.Mutex
	cmd        *exec.Cmd
	state      pb.DaemonState
	started    time.Time
	restarts   uint32
	lastExit   string
	lastExitAt time.Time
	exits      []time.Time
	heartbeat  time.Time
	health     *pb.Health
	// restartNow wakes run from a backoff or a failed state.
	restartNow chan struct{}
	// requested is set when the operator asked for the restart, so the
	// exit it causes is not counted as a crash.
	requested bool
	done      chan struct{}
	// exited is closed when the current cmd has been waited for.
	exited chan struct{}
	// stopping is set by stop: start refuses from then on, so a restart
	// racing the shutdown cannot leave a daemon behind.
	stopping bool
}

var errStopping = errors.New("the router is stopping")

func (p *process) start() error {
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	// Own process group, and SIGKILL if the launcher dies, so a kill -9 of
	// sitesecd leaves no orphan daemons.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return errStopping
	}
	if p.credential != "" {
		r, err := credentialPipe(p.credential)
		if err != nil {
			return err
		}
		defer r.Close()
		cmd.ExtraFiles = []*os.File{r}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	p.state = pb.DaemonState_DAEMON_STATE_RUNNING
	p.started = time.Now()
	p.health = nil
	p.l.trace("started", p.name, cmd.Process.Pid, "")
	return nil
}

// credentialPipe returns the read end of a pipe that holds secret and is
// closed for writing: the child reads the secret and sees the end of it.
func credentialPipe(secret string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// Far below the pipe's buffer: the write does not block.
	_, err = io.WriteString(w, secret)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("credential pipe: %w", err)
	}
	return r, nil
}

// run supervises the daemon until ctx ends.
func (p *process) run(ctx context.Context) {
	defer close(p.done)
	backoff := minBackoff
	for {
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		var reason string
		if cmd != nil {
			err := cmd.Wait()
			close(exited)
			reason = exitReason(err)
		}
		if ctx.Err() != nil {
			p.mu.Lock()
			p.state = pb.DaemonState_DAEMON_STATE_STOPPED
			p.cmd = nil
			p.mu.Unlock()
			return
		}
		now := time.Now()
		p.mu.Lock()
		ran := now.Sub(p.started)
		requested := p.requested
		p.requested = false
		if requested {
			reason = "restart requested (" + reason + ")"
		}
		p.lastExit, p.lastExitAt = reason, now
		p.cmd = nil
		if !requested {
			p.exits = append(p.exits, now)
			for len(p.exits) > 0 && now.Sub(p.exits[0]) > crashWindow {
				p.exits = p.exits[1:]
			}
		}
		failed := len(p.exits) > crashLimit
		if ran >= stableAfter || requested {
			backoff = minBackoff
		}
		wait := backoff
		if requested {
			wait = 0
		}
		if failed {
			p.state = pb.DaemonState_DAEMON_STATE_FAILED
		} else {
			p.state = pb.DaemonState_DAEMON_STATE_RESTARTING
		}
		p.mu.Unlock()
		if cmd != nil {
			p.l.trace("exited", p.name, cmd.Process.Pid, reason)
		}
		if failed {
			p.l.report(fmt.Sprintf("%s keeps crashing (%d exits in %s, last: %s); not restarting it until `restart %s`",
				p.name, len(p.exits), crashWindow, reason, p.name))
			select {
			case <-ctx.Done():
				p.setState(pb.DaemonState_DAEMON_STATE_STOPPED)
				return
			case <-p.restartNow:
				p.mu.Lock()
				p.exits = nil
				p.mu.Unlock()
				backoff = minBackoff
			}
		} else if wait > 0 {
			select {
			case <-ctx.Done():
				p.setState(pb.DaemonState_DAEMON_STATE_STOPPED)
				return
			case <-time.After(wait):
			case <-p.restartNow:
			}
			backoff = min(backoff*2, maxBackoff)
		}
		if err := p.start(); errors.Is(err, errStopping) {
			p.setState(pb.DaemonState_DAEMON_STATE_STOPPED)
			return
		} else if err != nil {
			p.mu.Lock()
			p.lastExit = "cannot start: " + err.Error()
			p.exits = append(p.exits, time.Now())
			p.mu.Unlock()
			p.l.report(fmt.Sprintf("%s: cannot start: %v", p.name, err))
		} else {
			p.mu.Lock()
			p.restarts++
			p.mu.Unlock()
		}
	}
}

func (p *process) setState(s pb.DaemonState) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}

// pid returns the running process id, or 0.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// restart stops the daemon (SIGTERM, or SIGKILL when immediately) and
// waits for its replacement. It returns the old and new process ids.
func (p *process) restart(ctx context.Context, immediately bool) (int, int, error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.requested = cmd != nil
	p.mu.Unlock()
	old := 0
	if cmd != nil {
		old = cmd.Process.Pid
		sig := syscall.SIGTERM
		if immediately {
			sig = syscall.SIGKILL
		}
		_ = cmd.Process.Signal(sig)
		go killAfter(cmd, exited, stopTimeout)
	} else {
		select {
		case p.restartNow <- struct{}{}:
		default:
		}
	}
	for {
		if n := p.pid(); n != 0 && n != old {
			return old, n, nil
		}
		select {
		case <-ctx.Done():
			return old, 0, fmt.Errorf("%s did not come back: %w", p.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killAfter sends SIGKILL to cmd's process group if it has not exited
// after d.
func killAfter(cmd *exec.Cmd, exited <-chan struct{}, d time.Duration) {
	select {
	case <-exited:
	case <-time.After(d):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// stop sends SIGTERM and SIGKILL after stopTimeout, and returns when run
// has returned. The caller has ended run's context first; from here on no
// new process is started, so none is left behind.
func (p *process) stop() {
	p.mu.Lock()
	p.stopping = true
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		<-p.done
	}
}

func (p *process) status() *pb.ProcessStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &pb.ProcessStatus{
		Name:           p.name,
		State:          p.state,
		Restarts:       p.restarts,
		LastExitReason: p.lastExit,
		Supervisor:     "sitesecd",
	}
	if p.cmd != nil && p.cmd.Process != nil {
		s.Pid = int32(p.cmd.Process.Pid)
		s.StartedAt = timestamppb.New(p.started)
		s.UptimeSeconds = uint64(time.Since(p.started).Seconds())
	}
	if !p.lastExitAt.IsZero() {
		s.LastExitAt = timestamppb.New(p.lastExitAt)
	}
	switch {
	case p.health != nil && s.Pid != 0 && p.health.Pid == s.Pid && time.Since(p.heartbeat) < 3*heartbeatEvery:
		s.LastHeartbeat = timestamppb.New(p.heartbeat)
		s.ConfigRevision = p.health.ConfigRevision
		s.BusStatus = "connected"
	case s.Pid != 0:
		s.BusStatus = "no heartbeat"
	default:
		s.BusStatus = "-"
	}
	return s
}

func (p *process) sawHealth(h *pb.Health) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health = h
	p.heartbeat = time.Now()
}

// exitReason words an exit the way `show system processes` prints it.
func exitReason(err error) string {
	if err == nil {
		return "exited normally"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}

// executable checks that path is an executable regular file.
func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("daemon binary %s not found", path)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("daemon binary %s is not executable", path)
	}
	return nil
}
