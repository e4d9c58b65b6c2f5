package opfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 101), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(ok, 100); err != nil || string(b) != "hello\n" {
		t.Fatalf("Read(ok) = %q, %v", b, err)
	}
	if b, err := Read(link, 100); err != nil || string(b) != "hello\n" {
		t.Fatalf("Read(link) = %q, %v", b, err)
	}
	for _, tc := range []struct{ path, want string }{
		{big, "101 bytes, more than the 100 allowed"},
		{fifo, "not a regular file (a fifo)"},
		{dir, "not a regular file (a directory)"},
		{"/dev/zero", "not a regular file (a character device)"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		b, err := Read(tc.path, 100)
		if err == nil || !strings.Contains(err.Error(), tc.want) || b != nil {
			t.Errorf("Read(%s) = %d bytes, %v; want error %q", tc.path, len(b), err, tc.want)
		}
	}
}

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "req.csr")
	if err := WriteNew(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(p, []byte("two"), 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("existing file overwritten: %q", b)
	}
	// A dangling link is not written through.
	victim := filepath.Join(dir, "victim")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(link, []byte("x"), 0o644); err == nil {
		t.Fatal("wrote through a symbolic link")
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Fatalf("link target created: %v", err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&^0o644 != 0 {
		t.Fatalf("mode: %v %v", fi, err)
	}
}

func TestLoadRequests(t *testing.T) {
	text := []byte(strings.Repeat("abcdefghij", 25))
	for _, piece := range []int{1, 7, 100, 250, 1000} {
		reqs := LoadRequests("s", "u", []string{"load", "merge", "f"}, "f", text, piece)
		var got []byte
		for i, r := range reqs {
			if r.Offset != uint64(len(got)) || r.More != (i < len(reqs)-1) || r.File != "f" || len(r.Text) > piece {
				t.Fatalf("piece %d: request %d: offset %d more %v", piece, i, r.Offset, r.More)
			}
			got = append(got, r.Text...)
		}
		if !bytes.Equal(got, text) {
			t.Fatalf("piece %d: text differs", piece)
		}
	}
	if reqs := LoadRequests("s", "u", nil, "f", nil, 0); len(reqs) != 1 || reqs[0].More || reqs[0].Text != "" {
		t.Fatalf("empty file: %v", reqs)
	}
}
