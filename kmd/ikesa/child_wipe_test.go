package ikesa

import (
	"bytes"
	"testing"
)

// TestChildWipe: a CHILD SA that is removed keeps no key bytes in kmd.
func TestChildWipe(t *testing.T) {
	c := &ChildSA{EncrIn: []byte{1, 2}, IntegIn: []byte{3}, EncrOut: []byte{4, 5}, IntegOut: []byte{6}}
	keys := [][]byte{c.EncrIn, c.IntegIn, c.EncrOut, c.IntegOut}
	sa := &SA{Children: []*ChildSA{c}}
	sa.removeChild(c)
	for i, k := range keys {
		if !bytes.Equal(k, make([]byte, len(k))) {
			t.Errorf("key %d after removal: %x", i, k)
		}
	}
}
