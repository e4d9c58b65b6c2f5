// Package secret reads and writes Junos "$9$" secrets, the reversible
// obfuscation Junos shows for pre-shared keys and passwords
// (pre-shared-key ascii-text "$9$..."; ## SECRET-DATA). It is not
// encryption: it only keeps keys from being read over a shoulder. cfgd
// decodes such values when a pasted Junos configuration carries them.
//
// The algorithm is the one documented by the Crypt::Juniper Perl module:
// after "$9$", a salt character whose family says how many random
// characters follow, then each plaintext byte as 2 to 4 characters whose
// distances in a 65-character alphabet, weighted by a rotating table,
// sum to the byte.
package secret

import (
	"errors"
	"io"
	"strings"
)

// Magic starts every $9$ secret.
const Magic = "$9$"

var family = [4]string{"QzF3n6/9CAtpu0O", "B1IREhcSyrleKvMW8LXx", "7N-dVbwsY2g4oaJZGUDj", "iHkq.mPf5T"}

var encoding = [7][]int{{1, 4, 32}, {1, 16, 32}, {1, 8, 32}, {1, 64}, {1, 32}, {1, 4, 16, 128}, {1, 32, 64}}

var (
	alphabet string   // the families in order
	index    [256]int // position in alphabet, -1 if absent
	extra    [256]int // random characters after a salt of this family
)

func init() {
	alphabet = strings.Join(family[:], "")
	for i := range index {
		index[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		index[alphabet[i]] = i
	}
	for f, chars := range family {
		for i := 0; i < len(chars); i++ {
			extra[chars[i]] = 3 - f
		}
	}
}

// Errors of Decode.
var (
	ErrNotSecret = errors.New("secret: not a $9$ secret")
	ErrMalformed = errors.New("secret: malformed $9$ secret")
)

// Is reports whether s looks like a $9$ secret.
func Is(s string) bool {
	if !strings.HasPrefix(s, Magic) || len(s) < len(Magic)+1 {
		return false
	}
	for i := len(Magic); i < len(s); i++ {
		if index[s[i]] < 0 {
			return false
		}
	}
	return true
}

// Decode returns the plaintext of a $9$ secret.
func Decode(s string) (string, error) {
	if !Is(s) {
		return "", ErrNotSecret
	}
	chars := s[len(Magic):]
	salt := chars[0]
	if len(chars) < 1+extra[salt] {
		return "", ErrMalformed
	}
	chars = chars[1+extra[salt]:]
	prev := salt
	var out []byte
	for len(chars) > 0 {
		dec := encoding[len(out)%len(encoding)]
		if len(chars) < len(dec) {
			return "", ErrMalformed
		}
		sum := 0
		for i, w := range dec {
			c := chars[i]
			gap := (index[c]-index[prev]+len(alphabet))%len(alphabet) - 1
			if gap < 0 {
				return "", ErrMalformed
			}
			sum += gap * w
			prev = c
		}
		if sum > 255 {
			return "", ErrMalformed
		}
		out = append(out, byte(sum))
		chars = chars[len(dec):]
	}
	return string(out), nil
}

// Encode returns a $9$ secret for plain, with its salt and padding read
// from rand.
func Encode(plain string, rand io.Reader) (string, error) {
	var r [1]byte
	pick := func() (byte, error) {
		if _, err := io.ReadFull(rand, r[:]); err != nil {
			return 0, err
		}
		return alphabet[int(r[0])%len(alphabet)], nil
	}
	salt, err := pick()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(Magic)
	b.WriteByte(salt)
	for i := 0; i < extra[salt]; i++ {
		c, err := pick()
		if err != nil {
			return "", err
		}
		b.WriteByte(c)
	}
	prev := salt
	for pos := 0; pos < len(plain); pos++ {
		enc := encoding[pos%len(encoding)]
		v := int(plain[pos])
		gaps := make([]int, len(enc))
		for i := len(enc) - 1; i >= 0; i-- {
			gaps[i] = v / enc[i]
			v %= enc[i]
		}
		for _, g := range gaps {
			c := alphabet[(index[prev]+g+1)%len(alphabet)]
			b.WriteByte(c)
			prev = c
		}
	}
	return b.String(), nil
}
