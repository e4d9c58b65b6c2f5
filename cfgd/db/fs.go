package db

import (
	"os"
	"path/filepath"
)

// FS is the file system operations the database uses, so tests can fail
// any one of them and check that a crash at that point leaves a usable
// database.
type FS interface {
	// WriteFile creates name with perm, writes data and fsyncs it.
	WriteFile(name string, data []byte, perm os.FileMode) error
	// WriteCopy creates name with perm and writes data without fsync:
	// for a file that is never read back.
	WriteCopy(name string, data []byte, perm os.FileMode) error
	Rename(oldpath, newpath string) error
	// SyncDir fsyncs a directory so renames and removals in it are durable.
	SyncDir(dir string) error
	Remove(name string) error
	ReadFile(name string) ([]byte, error)
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string, perm os.FileMode) error
}

// OS is the real file system.
type OS struct{}

func (OS) WriteFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (OS) WriteCopy(name string, data []byte, perm os.FileMode) error {
	return os.WriteFile(name, data, perm)
}

func (OS) Rename(o, n string) error { return os.Rename(o, n) }

func (OS) SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (OS) Remove(name string) error             { return os.Remove(name) }
func (OS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (OS) ReadDir(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out, err
}

func (OS) MkdirAll(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return os.Chmod(filepath.Clean(dir), perm)
}
