package sad

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MarkKey identifies an outbound SA across restarts: its SPI, destination
// and a fingerprint of its keys, so that a new SA that happens to reuse an
// SPI does not inherit an old counter, while the same manual SA does.
type MarkKey struct {
	SPI         uint32
	Dst         netip.Addr
	Fingerprint string // 16 hex digits of SHA-256 over the keys
}

func fingerprint(encKey, authKey []byte) string {
	h := sha256.New()
	h.Write(encKey)
	h.Write([]byte{0})
	h.Write(authKey)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Marks are the outbound sequence high-water marks persisted under
// <root>/var/db/fwdd (DESIGN.md, "Who owns what"). A mark M means that
// sequence numbers up to M may have been used, so after a restart the SA
// continues at M+1 at the earliest. Marks are written ahead, in chunks,
// before the numbers they cover are used: a kill -9 can waste up to a
// chunk of numbers but never rewinds.
type Marks struct {
	path string // "" keeps marks in memory only
	mu   sync.Mutex
	m    map[MarkKey]uint64
}

// MarksFile is the file name of the marks under the state directory.
const MarksFile = "sequence-marks"

// OpenMarks loads the marks of dir, creating it 0700; dir "" keeps the
// marks in memory (tests, or a data plane that demands fresh keys).
func OpenMarks(dir string) (*Marks, error) {
	m := &Marks{m: map[MarkKey]uint64{}}
	if dir == "" {
		return m, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sad: state directory: %w", err)
	}
	m.path = filepath.Join(dir, MarksFile)
	f, err := os.Open(m.path)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sad: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		k, v, err := parseMark(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("sad: %s:%d: %w", m.path, line, err)
		}
		m.m[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sad: %s: %w", m.path, err)
	}
	return m, nil
}

// parseMark reads "SPI DST FINGERPRINT MARK".
func parseMark(s string) (MarkKey, uint64, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return MarkKey{}, 0, fmt.Errorf("want 4 fields, got %d", len(f))
	}
	spi, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return MarkKey{}, 0, fmt.Errorf("spi: %w", err)
	}
	dst, err := netip.ParseAddr(f[1])
	if err != nil {
		return MarkKey{}, 0, fmt.Errorf("destination: %w", err)
	}
	if _, err := hex.DecodeString(f[2]); err != nil || len(f[2]) != 16 {
		return MarkKey{}, 0, fmt.Errorf("fingerprint %q", f[2])
	}
	v, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		return MarkKey{}, 0, fmt.Errorf("mark: %w", err)
	}
	return MarkKey{SPI: uint32(spi), Dst: dst, Fingerprint: f[2]}, v, nil
}

// Get returns the mark of k.
func (m *Marks) Get(k MarkKey) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}

// Reserve records durably that numbers up to upTo may be used by k. It
// returns once the file is on disk (written to a temporary file, synced
// and renamed over the old one).
func (m *Marks) Reserve(k MarkKey, upTo uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m[k] >= upTo {
		return nil
	}
	m.m[k] = upTo
	return m.flush()
}

// Forget drops the mark of k (a dynamic SA that was deleted: its keys
// are never used again).
func (m *Marks) Forget(k MarkKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[k]; !ok {
		return nil
	}
	delete(m.m, k)
	return m.flush()
}

// All returns every mark.
func (m *Marks) All() map[MarkKey]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[MarkKey]uint64, len(m.m))
	for k, v := range m.m {
		out[k] = v
	}
	return out
}

func (m *Marks) flush() error {
	if m.path == "" {
		return nil
	}
	keys := make([]MarkKey, 0, len(m.m))
	for k := range m.m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].SPI != keys[j].SPI {
			return keys[i].SPI < keys[j].SPI
		}
		return keys[i].Dst.Less(keys[j].Dst)
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d %s %s %d\n", k.SPI, k.Dst, k.Fingerprint, m.m[k])
	}
	f, err := os.CreateTemp(filepath.Dir(m.path), MarksFile+".*")
	if err != nil {
		return fmt.Errorf("sad: marks: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("sad: marks: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sad: marks: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sad: marks: %w", err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return fmt.Errorf("sad: marks: %w", err)
	}
	if d, err := os.Open(filepath.Dir(m.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
