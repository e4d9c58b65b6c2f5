package e2e

import (
	"encoding/json"
	"testing"
)

// PingResult mirrors nettool's JSON output.
type PingResult struct {
	Sent            int     `json:"sent"`
	Received        int     `json:"received"`
	Dup             int     `json:"duplicates"`
	Lost            []int   `json:"lost"`
	LongestOutageMs float64 `json:"longest_outage_ms"`
	MaxRTTms        float64 `json:"max_rtt_ms"`
}

// StreamResult mirrors nettool stream's JSON output.
type StreamResult struct {
	Sent       int     `json:"sent"`
	Echoed     int     `json:"echoed"`
	MaxStallMs float64 `json:"max_stall_ms"`
	Error      string  `json:"error"`
}

func parsePing(t testing.TB, out string) PingResult {
	t.Helper()
	var r PingResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("nettool ping output: %v: %q", err, out)
	}
	return r
}

func parseStream(t testing.TB, out string) StreamResult {
	t.Helper()
	var r StreamResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("nettool stream output: %v: %q", err, out)
	}
	return r
}
