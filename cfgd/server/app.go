package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/cfgd/conf"
	"github.com/sitesec/sitesec/cfgd/db"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/daemon"
	"github.com/sitesec/sitesec/services/trace"
)

// App is cfgd as a daemon.App: cmd/cfgd runs
//
//	daemon.Main("cfgd", server.NewApp())
type App struct {
	*Server
	mu sync.Mutex
	d  *daemon.Daemon
}

// NewApp returns the cfgd App; the database opens in Start.
func NewApp() *App { return &App{} }

// ConfigDir is where the commit database lives under the root.
const ConfigDir = "var/db/config"

// Start opens the commit database, serves configuration mode, listens to
// the daemons' heartbeats and acknowledgements, and makes sure the bucket
// holds the committed revision (a cfgd restarted with its bus, or a bus
// restarted without its store, gets it back).
func (a *App) Start(ctx context.Context, d *daemon.Daemon) error {
	a.d = d
	database, err := db.Open(db.Options{Dir: d.Path(ConfigDir), OnRollback: a.onRollback})
	if err != nil {
		return fmt.Errorf("cfgd: %w", err)
	}
	a.mu.Lock()
	a.Server = New(database, d.Bus)
	a.Self = d.Name
	a.OnCommit = func(st CommitSteps) {
		d.Trace.Event(trace.FlagGeneral, trace.Info).Uint64("revision", st.Revision).Dur("check", st.Check).
			Dur("prepare", st.Prepare).Dur("save", st.Save).Dur("publish", st.Publish).Dur("acks", st.Acks).Msg("commit steps")
	}
	a.mu.Unlock()
	if _, err := d.Bus.Handle(subject.Cfgd, subject.VerbConfig, func(ctx context.Context, m proto.Message) (proto.Message, error) {
		req := m.(*pb.ConfigEditRequest)
		rep := a.Edit(ctx, req)
		d.Trace.Event(trace.FlagGeneral, trace.Info).Str("session", req.GetSession()).Str("user", req.GetUser()).
			Str("command", firstWords(req.GetWords())).Int("errors", len(rep.GetErrors())).Msg("configuration command")
		return rep, nil
	}); err != nil {
		return fmt.Errorf("cfgd: %w", err)
	}
	if _, err := d.Bus.Subscribe(subject.Cfgd, subject.VerbAck, func(m proto.Message) { a.Ack(m.(*pb.ApplyAck)) }); err != nil {
		return fmt.Errorf("cfgd: %w", err)
	}
	for _, name := range subject.Daemons {
		if _, err := d.Bus.Subscribe(name, subject.VerbHealth, func(m proto.Message) { a.Health(m.(*pb.Health)) }); err != nil {
			return fmt.Errorf("cfgd: %w", err)
		}
	}
	m := database.Meta()
	cur, err := d.Bus.GetConfig(ctx)
	if m.Revision > 0 && (err != nil || cur == nil || cur.GetRevision() != m.Revision) {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.Publish(pctx); err != nil {
			d.Trace.Event(trace.FlagGeneral, trace.Error).Err(err).Uint64("revision", m.Revision).Msg("publish committed configuration")
		}
	}
	d.Trace.Lifecycle().Uint64("revision", m.Revision).Msg("configuration database open")
	return nil
}

// firstWords names a command in traces without its values, which may be
// secrets (set ... pre-shared-key ascii-text KEY).
func firstWords(w []string) string {
	if len(w) > 2 {
		w = w[:2]
	}
	s := ""
	for i, x := range w {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

func (a *App) onRollback(m db.Meta, cfg *conf.Node) {
	a.mu.Lock()
	s := a.Server
	a.mu.Unlock()
	if s != nil {
		s.OnRollback(m, cfg)
	}
	if a.d != nil {
		a.d.Trace.Lifecycle().Uint64("revision", m.Revision).Msg("commit confirmed not confirmed: rolled back")
	}
}

// Apply is cfgd's own share of a configuration: its traceoptions, which
// the runtime applies itself.
func (a *App) Apply(context.Context, *pb.Config, *pb.Config) error { return nil }

// Stop has nothing to flush: every commit is on disk before it is
// answered.
func (a *App) Stop(context.Context) error { return nil }
