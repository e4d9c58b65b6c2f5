// Package bench holds sitesec's whole-system benchmarks (issue 15): data
// plane throughput against wireguard-go, commit to first packet and IKE
// setup rate against strongSwan. They are Go tests behind the build tag
// `bench`, so that `make test` neither builds nor runs them; `make
// bench-net` runs them. Each figure is reported beside its anchor measured
// in the same run, interleaved, several repetitions, with the load average
// of the machine.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
)

// Tunnel is the data of testdata/tunnel.conf.tmpl.
type Tunnel struct {
	e2e.Tunnel
	// Enc and Integ are the ESP encryption and authentication algorithms
	// (Integ empty for AEAD transforms); UDP selects ESP in UDP on 4565.
	Enc, Integ string
	UDP        bool
}

// Render renders testdata/tunnel.conf.tmpl.
func (c Tunnel) Render() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	tm, err := template.ParseFiles(filepath.Join(filepath.Dir(file), "testdata", "tunnel.conf.tmpl"))
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tm.Execute(&b, c); err != nil {
		return "", err
	}
	return b.String(), nil
}

// TunnelFor is e2e.TunnelFor with a pre-shared key and the transform.
func TunnelFor(router, enc, integ string, udp bool) Tunnel {
	return Tunnel{Tunnel: e2e.TunnelFor(router, "psk"), Enc: enc, Integ: integ, UDP: udp}
}

// LoadAvg returns /proc/loadavg's first three fields.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Median returns the median of v (0 for none).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// EnvInt returns the integer in environment variable name, or def.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// iperfResult is the part of iperf3 -J's output the benchmarks read.
type iperfResult struct {
	End struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
		// UDP: the receiver's view.
		Sum struct {
			Seconds     float64 `json:"seconds"`
			Packets     int     `json:"packets"`
			LostPackets int     `json:"lost_packets"`
		} `json:"sum"`
	} `json:"end"`
	Error string `json:"error"`
}

func parseIperf(out string) (iperfResult, error) {
	var r iperfResult
	// iperf3 -J prints one JSON object; anything before it is noise.
	if i := strings.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("iperf3 output: %v: %.300q", err, out)
	}
	if r.Error != "" {
		return r, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r, nil
}

// Since returns milliseconds since t0.
func Since(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }
