package replay

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestWindowSequence(t *testing.T) {
	type step struct {
		seq  uint64
		want error
	}
	tests := []struct {
		name  string
		size  int
		steps []step
	}{
		{"in order", 64, []step{{1, nil}, {2, nil}, {3, nil}, {3, ErrReplayed}}},
		{"zero", 64, []step{{0, ErrZero}, {1, nil}, {0, ErrZero}}},
		{"reorder within window", 64, []step{{10, nil}, {5, nil}, {5, ErrReplayed}, {9, nil}, {11, nil}}},
		{"edge of window", 64, []step{{100, nil}, {37, nil}, {36, ErrTooOld}}},
		{"big jump clears", 64, []step{{1, nil}, {1000, nil}, {999, nil}, {937, nil}, {936, ErrTooOld}, {1000, ErrReplayed}}},
		{"jump past the ring", 128, []step{{5, nil}, {5 + 64*200, nil}, {5 + 64*200 - 1, nil}, {5 + 64*199, nil}}},
		{"4096", 4096, []step{{5000, nil}, {905, nil}, {904, ErrTooOld}, {905, ErrReplayed}, {4999, nil}}},
		{"disabled", 0, []step{{10, nil}, {10, nil}, {1, nil}, {0, ErrZero}}},
		{"block boundary", 64, []step{{63, nil}, {64, nil}, {127, nil}, {64, ErrReplayed}, {63, ErrTooOld}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			if err := w.Init(tt.size, false); err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				if err := w.Check(s.seq); !errors.Is(err, s.want) {
					t.Fatalf("step %d: Check(%d) = %v, want %v", i, s.seq, err, s.want)
				}
				if err := w.Accept(s.seq); !errors.Is(err, s.want) {
					t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.seq, err, s.want)
				}
			}
		})
	}
}

func TestInitRange(t *testing.T) {
	var w Window
	for _, n := range []int{1, 63, 4097, -1} {
		if err := w.Init(n, false); err == nil {
			t.Errorf("Init(%d) succeeded", n)
		}
	}
	for _, n := range []int{0, 64, 100, 4096} {
		if err := w.Init(n, true); err != nil {
			t.Errorf("Init(%d): %v", n, err)
		}
		if w.Size() != n {
			t.Errorf("Size() = %d after Init(%d)", w.Size(), n)
		}
	}
}

func TestZeroValue(t *testing.T) {
	var w Window
	if w.Size() != DefaultSize {
		t.Fatalf("zero Window size %d", w.Size())
	}
	if err := w.Accept(200); err != nil {
		t.Fatal(err)
	}
	if err := w.Accept(200 - DefaultSize); !errors.Is(err, ErrTooOld) {
		t.Fatalf("got %v", err)
	}
	if err := w.Accept(201 - DefaultSize); err != nil {
		t.Fatal(err)
	}
}

// TestAgainstModel compares the window with a naive set of sequence
// numbers on random traffic.
func TestAgainstModel(t *testing.T) {
	for _, size := range []int{64, 65, 100, 128, 200, 1024, 4095, 4096} {
		r := rand.New(rand.NewPCG(uint64(size), 7))
		var w Window
		if err := w.Init(size, false); err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		var top uint64
		cur := uint64(1)
		for i := 0; i < 20000; i++ {
			var seq uint64
			switch r.IntN(4) {
			case 0:
				cur += uint64(r.IntN(3 * size))
				seq = cur
			default:
				d := uint64(r.IntN(size + 100))
				if d >= cur {
					d = cur - 1
				}
				seq = cur - d
			}
			var want error
			switch {
			case seq == 0:
				want = ErrZero
			case seq <= top && top-seq >= uint64(size):
				want = ErrTooOld
			case seen[seq]:
				want = ErrReplayed
			}
			got := w.Accept(seq)
			if !errors.Is(got, want) {
				t.Fatalf("size %d step %d: Accept(%d) top %d = %v, want %v", size, i, seq, top, got, want)
			}
			if want == nil {
				seen[seq] = true
				top = max(top, seq)
			}
		}
	}
}

func TestInferESN(t *testing.T) {
	const hi = uint64(1) << 32
	tests := []struct {
		name string
		top  uint64
		low  uint32
		want uint64
	}{
		{"fresh", 0, 5, 5},
		{"same subspace ahead", 1000, 2000, 2000},
		{"same subspace behind", 1000, 990, 990},
		{"case A wrap ahead", hi - 10, 3, hi + 3},
		{"case A in window", 3*hi + 500, 450, 3*hi + 450},
		{"case A below window is next subspace", 3*hi + 500, 100, 4*hi + 100},
		{"case B behind into previous subspace", 5*hi + 10, 0xFFFFFFF0, 4*hi + 0xFFFFFFF0},
		{"case B ahead", 5*hi + 10, 20, 5*hi + 20},
		{"case B subspace zero", 10, 0xFFFFFFF0, 0xFFFFFFF0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			if err := w.Init(64, true); err != nil {
				t.Fatal(err)
			}
			if tt.top != 0 {
				if err := w.Accept(tt.top); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.Infer(tt.low); got != tt.want {
				t.Fatalf("Infer(%#x) with top %#x = %#x, want %#x", tt.low, tt.top, got, tt.want)
			}
		})
	}
}

func TestInferWithoutESN(t *testing.T) {
	var w Window
	_ = w.Accept(0xFFFFFFF0)
	if got := w.Infer(3); got != 3 {
		t.Fatalf("Infer = %d", got)
	}
}

// TestESNAcrossWrap runs a stream across the 2^32 boundary with
// reordering and checks every packet is accepted once.
func TestESNAcrossWrap(t *testing.T) {
	var w Window
	if err := w.Init(128, true); err != nil {
		t.Fatal(err)
	}
	start := uint64(1)<<32 - 300
	if err := w.Accept(start); err != nil {
		t.Fatal(err)
	}
	for s := start + 1; s < start+600; s += 2 {
		// Send s+1 before s.
		for _, q := range []uint64{s + 1, s} {
			full := w.Infer(uint32(q))
			if full != q {
				t.Fatalf("Infer(%#x) = %#x, want %#x", uint32(q), full, q)
			}
			if err := w.Accept(full); err != nil {
				t.Fatalf("Accept(%#x): %v", q, err)
			}
		}
	}
}

func BenchmarkAcceptInOrder(b *testing.B) {
	var w Window
	_ = w.Init(1024, true)
	b.ReportAllocs()
	for i := range b.N {
		seq := uint64(i + 1)
		_ = w.Accept(w.Infer(uint32(seq)))
	}
}

func BenchmarkAcceptReordered(b *testing.B) {
	var w Window
	_ = w.Init(1024, false)
	b.ReportAllocs()
	for i := range b.N {
		seq := uint64(i+1) ^ 7
		_ = w.Accept(seq)
	}
}

func FuzzWindow(f *testing.F) {
	f.Add(uint16(64), true, []byte{1, 2, 3, 200, 0, 0, 255})
	f.Fuzz(func(t *testing.T, size uint16, esn bool, ops []byte) {
		var w Window
		sz := int(size) % (MaxSize + 1)
		if sz != 0 && sz < MinSize {
			sz = MinSize
		}
		if err := w.Init(sz, esn); err != nil {
			t.Fatal(err)
		}
		var seq uint64
		for i := 0; i+1 < len(ops); i += 2 {
			delta := uint64(ops[i]) << (ops[i+1] % 40)
			if ops[i+1]&0x80 != 0 && delta < seq {
				seq -= delta
			} else {
				seq += delta
			}
			full := w.Infer(uint32(seq))
			c := w.Check(full)
			a := w.Accept(full)
			if c != a {
				t.Fatalf("Check %v but Accept %v", c, a)
			}
			if a == nil && sz != 0 && w.Accept(full) == nil {
				t.Fatalf("sequence %d accepted twice", full)
			}
		}
	})
}

// TestZeroValueWindow: a Window never initialised is a DefaultSize window
// (its ring is made by the first Accept).
func TestZeroValueWindow(t *testing.T) {
	var w Window
	if err := w.Check(5); err != nil {
		t.Fatalf("Check before any Accept: %v", err)
	}
	if err := w.Accept(5); err != nil {
		t.Fatal(err)
	}
	if err := w.Accept(5); err != ErrReplayed {
		t.Errorf("second Accept(5): %v, want ErrReplayed", err)
	}
	if err := w.Accept(5 + DefaultSize); err != nil {
		t.Fatal(err)
	}
	if err := w.Accept(5); err != ErrTooOld {
		t.Errorf("Accept(5) after the window moved: %v, want ErrTooOld", err)
	}
	if err := w.Accept(6); err != nil {
		t.Errorf("Accept(6), the window's oldest: %v", err)
	}
}
