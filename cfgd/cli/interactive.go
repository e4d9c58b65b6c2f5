package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// interactive runs the shell on a terminal: line editing and history
// (golang.org/x/term), Tab completion and '?' help from the command tree
// and the configuration schema.
func (s *Shell) interactive(ctx context.Context, in *os.File, out io.Writer) error {
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return err
	}
	defer term.Restore(int(in.Fd()), old)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "")
	if w, h, err := term.GetSize(int(in.Fd())); err == nil {
		_ = t.SetSize(w, h)
	}
	s.Out = t
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		before := line[:pos]
		switch key {
		case '\t':
			nl, cs := s.completeLine(before)
			if nl != before {
				return nl + line[pos:], len(nl), true
			}
			if len(cs) > 0 {
				fmt.Fprintln(t, strings.Join(helpLines(cs), "\n"))
			}
			return line, pos, true
		case '?':
			cs := s.candidates(before)
			if len(cs) == 0 {
				fmt.Fprintln(t, "error: unknown command or no completions")
			} else {
				fmt.Fprintln(t, strings.Join(helpLines(cs), "\n"))
			}
			return line, pos, true
		}
		return "", 0, false
	}
	for {
		if b := s.banner(); b != "" {
			fmt.Fprintln(t, b)
		}
		t.SetPrompt(s.prompt())
		line, err := t.ReadLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !s.configMode && (line == "exit" || line == "quit") {
			return nil
		}
		s.Run(ctx, line)
	}
}
