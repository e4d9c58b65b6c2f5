// Command testrun runs `go test -json ARGS...` and prints what a person
// reads in a plain `go test` run: each package's result line, the whole
// output of every failed test, and every skipped test with its reason. It
// ends with one line, "N passed, N failed, N skipped".
//
// It exits non-zero when go test did, when a test failed, and, under CI
// (CI=true), when a test skipped: in CI every environment a test needs is
// installed by scripts/deps.sh, so a skip means a machine lost something
// and must not pass silently (issue 10).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type key struct{ pkg, test string }

// tally follows the events of one run.
type tally struct {
	out     io.Writer
	verbose bool
	buf     map[key][]string
	passed  int
	failed  []string
	skipped []string
}

func newTally(out io.Writer, verbose bool) *tally {
	return &tally{out: out, verbose: verbose, buf: map[key][]string{}}
}

func (t *tally) add(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output":
		if e.Test == "" {
			// Package lines: "ok  pkg 1.2s", "FAIL pkg", "? pkg [no test
			// files]", build errors and panics outside a test. "PASS" alone
			// repeats what "ok" says.
			if strings.TrimSpace(e.Output) != "PASS" {
				fmt.Fprint(t.out, e.Output)
			}
			return
		}
		if t.verbose {
			fmt.Fprint(t.out, e.Output)
			return
		}
		t.buf[k] = append(t.buf[k], e.Output)
	case "pass":
		if e.Test != "" {
			t.passed++
			delete(t.buf, k)
		}
	case "fail":
		if e.Test != "" {
			t.failed = append(t.failed, e.Package+" "+e.Test)
			for _, l := range t.buf[k] {
				fmt.Fprint(t.out, l)
			}
			delete(t.buf, k)
		}
	case "skip":
		if e.Test != "" {
			t.skipped = append(t.skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(t.buf[k])))
			delete(t.buf, k)
		}
	}
}

// skipReason is the test's last log lines before its "--- SKIP" line.
func skipReason(lines []string) string {
	var why []string
	for _, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- SKIP") {
			continue
		}
		why = append(why, s)
	}
	if len(why) > 2 {
		why = why[len(why)-2:]
	}
	if len(why) == 0 {
		return "(no reason given)"
	}
	return strings.Join(why, " / ")
}

// finish prints the summary and says whether the run passed.
func (t *tally) finish(ci bool) bool {
	if len(t.skipped) > 0 {
		fmt.Fprintf(t.out, "\nskipped:\n")
		for _, s := range t.skipped {
			fmt.Fprintf(t.out, "  %s\n", s)
		}
	}
	if len(t.failed) > 0 {
		fmt.Fprintf(t.out, "\nfailed:\n")
		for _, s := range t.failed {
			fmt.Fprintf(t.out, "  %s\n", s)
		}
	}
	ok := len(t.failed) == 0
	if ci && len(t.skipped) > 0 {
		fmt.Fprintf(t.out, "\ntestrun: CI=true and %d tests skipped: every environment the tests need is installed in CI, so a skip fails the run\n", len(t.skipped))
		ok = false
	}
	fmt.Fprintf(t.out, "\n%d passed, %d failed, %d skipped\n", t.passed, len(t.failed), len(t.skipped))
	return ok
}

func main() {
	verbose := false
	args := []string{"test", "-json"}
	for _, a := range os.Args[1:] {
		if a == "-v" {
			verbose = true
			continue
		}
		args = append(args, a)
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testrun: %v\n", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testrun: %v\n", err)
		os.Exit(2)
	}
	t := newTally(os.Stdout, verbose)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event (go test prints build failures as text).
			fmt.Println(sc.Text())
			continue
		}
		t.add(e)
	}
	runErr := cmd.Wait()
	ok := t.finish(os.Getenv("CI") == "true")
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "testrun: go test: %v\n", runErr)
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}
