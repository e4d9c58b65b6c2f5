// Package busfile is how the processes of one router find its bus: the
// launcher writes <root>/var/run/sitesec/bus.json (mode 0600) when the
// router is up, and the cli (or a daemon run by hand) reads it when given
// --root but no --bus. It holds the cli's password alone: the daemons get
// theirs from sitesecd on an inherited pipe, so reading this file makes a
// process the operator, never a daemon.
package busfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Info is the content of the file.
type Info struct {
	// URL is the NATS URL, "nats://127.0.0.1:PORT".
	URL string `json:"url"`
	// SubjectRoot and Router name the router's subjects.
	SubjectRoot string `json:"subject_root"`
	Router      string `json:"router"`
	// Passwords by user name: only "cli".
	Passwords map[string]string `json:"passwords,omitempty"`
	// CA is the file of the CA that verifies the server's TLS
	// certificate, when the bus is TLS.
	CA string `json:"ca,omitempty"`
	// PID of the launcher that wrote the file.
	PID int `json:"pid"`
}

// Path is where the file lives under root.
func Path(root string) string { return filepath.Join(root, "var", "run", "sitesec", "bus.json") }

// ErrNotRunning is returned by Read when no launcher runs on root.
var ErrNotRunning = errors.New("no router is running there")

// Read reads the file under root.
func Read(root string) (*Info, error) {
	b, err := os.ReadFile(Path(root))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no bus at %s: %w (start it with sitesecd --root %s, or give --bus)", root, ErrNotRunning, root)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %v", Path(root), unwrap(err))
	}
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("read %s: %v", Path(root), err)
	}
	return &in, nil
}

// Write writes the file atomically with mode 0600.
func Write(root string, in *Info) error {
	p := Path(root)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Remove deletes the file.
func Remove(root string) { os.Remove(Path(root)) }

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
