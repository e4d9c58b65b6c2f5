package main

import (
	"bytes"
	"strings"
	"testing"
)

func feed(tl *tally, events ...event) {
	for _, e := range events {
		tl.add(e)
	}
}

var run = []event{
	{Action: "output", Package: "p", Test: "TestA", Output: "=== RUN   TestA\n"},
	{Action: "output", Package: "p", Test: "TestA", Output: "    a_test.go:9: noisy log\n"},
	{Action: "pass", Package: "p", Test: "TestA"},
	{Action: "output", Package: "p", Test: "TestB", Output: "    b_test.go:3: needs docker\n"},
	{Action: "output", Package: "p", Test: "TestB", Output: "--- SKIP: TestB (0.00s)\n"},
	{Action: "skip", Package: "p", Test: "TestB"},
	{Action: "output", Package: "p", Test: "TestC", Output: "    c_test.go:7: got 1, want 2\n"},
	{Action: "fail", Package: "p", Test: "TestC"},
	{Action: "output", Package: "p", Output: "PASS\n"},
	{Action: "output", Package: "p", Output: "FAIL\tp\t0.1s\n"},
}

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	tl := newTally(&out, false)
	feed(tl, run...)
	if tl.finish(false) {
		t.Error("a failed test passed the run")
	}
	s := out.String()
	for _, want := range []string{"got 1, want 2", "p TestB: b_test.go:3: needs docker", "FAIL\tp\t0.1s", "1 passed, 1 failed, 1 skipped"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "noisy log") || strings.Contains(s, "PASS\n") {
		t.Errorf("a passing test's log or the bare PASS line was printed:\n%s", s)
	}
}

func TestSkipFailsOnlyUnderCI(t *testing.T) {
	skipOnly := append([]event(nil), run[:6]...)
	for _, ci := range []bool{false, true} {
		var out bytes.Buffer
		tl := newTally(&out, false)
		feed(tl, skipOnly...)
		if got := tl.finish(ci); got == ci {
			t.Errorf("CI=%v: run passed = %v with one skip\n%s", ci, got, out.String())
		}
	}
}
