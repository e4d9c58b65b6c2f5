package db

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
)

// FS is the file system operations the database uses, so tests can fail
// any one of them and check that a crash at that point leaves a usable
// database.
type FS interface {
	// WriteFile creates name with perm, writes what write writes to w
	// (buffered) and fsyncs it. A revision is rendered straight into its
	// file: a 10,000-service-set configuration is 17 MB of text, which
	// as one buffer cost a tenth of the commit in clearing fresh memory
	// (issue 15 goal 5).
	WriteFile(name string, perm os.FileMode, write func(w *bufio.Writer) error) error
	// CopyFile creates dst with perm as a copy of src, without fsync:
	// for a file that is never read back.
	CopyFile(src, dst string, perm os.FileMode) error
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

func (OS) WriteFile(name string, perm os.FileMode, write func(w *bufio.Writer) error) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// CopyFile copies in the kernel where it can (copy_file_range).
func (OS) CopyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
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
