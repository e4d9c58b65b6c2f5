package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/opfile"
)

// Files the operator names are opened here, by the cli with the operator's
// own permissions, never by a daemon running as root (issue 14 item 5):
// `load MODE FILE` sends the file's text to cfgd, `request security pki ...
// load ... filename F [key K]` sends F and K to pkid in OpRequest.files, and
// a file pkid produces (generate-certificate-request ... filename F) comes
// back in OpReply.file_data and is written here, never over an existing
// file. Relative names are relative to the cli's working directory.

// loadFile reads the file of `load MODE FILE [relative]` and sends it to
// cfgd in pieces. It returns the reply to the last piece, or an error
// already worded for the operator.
func (s *Shell) loadFile(ctx context.Context, words []string) (*pb.ConfigEditReply, error) {
	name := words[2]
	path, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	b, err := opfile.Read(path, opfile.MaxConfig)
	if err != nil {
		return nil, fmt.Errorf("could not read %s: %v", name, err)
	}
	var rep pb.ConfigEditReply
	for _, req := range opfile.LoadRequests(s.session, s.user, words, path, b, 0) {
		rep.Reset()
		if err := s.Conn.Request(ctx, subject.Cfgd, subject.VerbConfig, req, &rep); err != nil {
			return nil, err
		}
		if len(rep.Errors) > 0 {
			break
		}
	}
	return &rep, nil
}

// isLoadFile reports whether words are `load MODE FILE ...` with a file.
func isLoadFile(words []string) bool {
	return len(words) >= 3 && words[0] == "load" && words[2] != "terminal" &&
		slices.Contains([]string{"merge", "override", "replace", "set"}, words[1])
}

// pkiFileWords are the keywords of pkid's load commands whose value is a
// file to read.
var pkiFileWords = []string{"filename", "key"}

// attachFiles reads the files a pkid load command names into req.Files.
func attachFiles(req *pb.OpRequest) error {
	if !slices.Contains(req.Words, "load") {
		return nil
	}
	for i := 0; i+1 < len(req.Words); i++ {
		if !slices.Contains(pkiFileWords, req.Words[i]) {
			continue
		}
		name := req.Words[i+1]
		b, err := opfile.Read(name, opfile.MaxPKI)
		if err != nil {
			return fmt.Errorf("cannot read %s: %v", name, err)
		}
		req.Files = append(req.Files, &pb.OpFile{Name: name, Data: b})
		i++
	}
	return nil
}

// saveFile writes the file a reply carries, never over an existing one.
func saveFile(rep *pb.OpReply) error {
	if rep.GetFileName() == "" {
		return nil
	}
	if err := opfile.WriteNew(rep.GetFileName(), rep.GetFileData(), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %v", rep.GetFileName(), err)
	}
	return nil
}
