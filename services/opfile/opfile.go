// Package opfile reads and writes the files an operator names in a command
// (load FILE, request security pki ... filename F) on the operator's side:
// the cli opens them with the user's own permissions, so no daemon running
// as root opens a path the operator chose (issue 14 item 5). Reads take
// regular files only, with a size bound, so /dev/zero or a fifo cannot
// exhaust memory or hang; writes never replace an existing file.
package opfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sitesec/sitesec/proto/pb"
)

// Size bounds of what an operator command may read.
const (
	MaxConfig = 16 << 20 // load merge|override|replace FILE, sitesecd --config
	MaxPKI    = 1 << 20  // certificates, keys, CRLs, requests
)

// Resolve returns name as is when absolute, or inside dir.
func Resolve(dir, name string) string {
	if filepath.IsAbs(name) || dir == "" {
		return name
	}
	return filepath.Join(dir, name)
}

// Read returns the content of the regular file path, at most max bytes. It
// opens without blocking (a fifo with no writer does not hang it), refuses
// anything but a regular file (devices, fifos, directories, sockets; a
// symbolic link is followed, as the operator's own shell would) and a file
// larger than max, also one that grows past max while it is read. Errors
// name path but never quote its content.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, kind(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed", path, max)
	}
	return b, nil
}

// WriteNew creates path with data and mode perm. It never replaces or
// writes through an existing file or symbolic link: an existing name is an
// error wrapping fs.ErrExist.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: not overwritten (choose another file name): %w", path, fs.ErrExist)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a fifo"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return m.Type().String()
}

// Piece is the text size of one load request: well below the 1 MiB NATS
// message limit with the request's other fields.
const Piece = 256 << 10

// LoadRequests splits the text of a file the operator loads into the
// ConfigEditRequests that carry it to cfgd (words: load MODE FILE [relative];
// file: the name for error positions): every request but the last has more
// set, and each has the offset of its text. An empty file is one request.
func LoadRequests(session, user string, words []string, file string, text []byte, piece int) []*pb.ConfigEditRequest {
	if piece <= 0 {
		piece = Piece
	}
	var out []*pb.ConfigEditRequest
	for off := 0; ; off += piece {
		end := min(off+piece, len(text))
		out = append(out, &pb.ConfigEditRequest{Session: session, User: user, Words: words, File: file,
			Text: string(text[off:end]), Offset: uint64(off), More: end < len(text)})
		if end == len(text) {
			return out
		}
	}
}
