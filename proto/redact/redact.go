// Package redact removes secret fields from protobuf messages before they
// are traced, dumped or shown. A field is secret when its .proto declares
// [(sitesec.v1.secret) = true].
package redact

import (
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
)

// Mark replaces a secret string. Secret bytes are cleared.
const Mark = "(redacted)"

// IsSecret reports whether field fd carries the secret option.
func IsSecret(fd protoreflect.FieldDescriptor) bool {
	opts := fd.Options()
	if opts == nil {
		return false
	}
	v, _ := proto.GetExtension(opts, pb.E_Secret).(bool)
	return v
}

// IsSecretWords reports whether field fd carries the secret_words option.
func IsSecretWords(fd protoreflect.FieldDescriptor) bool {
	opts := fd.Options()
	if opts == nil {
		return false
	}
	v, _ := proto.GetExtension(opts, pb.E_SecretWords).(bool)
	return v
}

// secretKeywords introduce a secret value in a command line.
var secretKeywords = map[string]bool{
	"ascii-text": true, "hexadecimal": true, "challenge-password": true,
	"password": true, "passphrase": true,
}

// Words returns words with every value that follows a secret keyword
// replaced by Mark. words itself is not modified.
func Words(words []string) []string {
	out := make([]string, len(words))
	copy(out, words)
	for i := 0; i+1 < len(out); i++ {
		if secretKeywords[out[i]] {
			out[i+1] = Mark
			i++
		}
	}
	return out
}

// Clone returns a copy of m with every secret field, at any depth, replaced.
// m itself is not modified. A nil message gives nil.
func Clone(m proto.Message) proto.Message {
	if m == nil {
		return nil
	}
	c := proto.Clone(m)
	scrub(c.ProtoReflect())
	return c
}

// JSON renders m with secrets redacted, for traces and bus dumps.
func JSON(m proto.Message) string {
	if m == nil {
		return "null"
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(Clone(m))
	if err != nil {
		return `{"error":"` + err.Error() + `"}`
	}
	return string(b)
}

func scrub(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if IsSecret(fd) {
			switch {
			case fd.IsList() || fd.IsMap() || fd.Kind() != protoreflect.StringKind:
				m.Clear(fd)
			default:
				m.Set(fd, protoreflect.ValueOfString(Mark))
			}
			return true
		}
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind && IsSecretWords(fd):
			l := v.List()
			var words []string
			for i := 0; i < l.Len(); i++ {
				words = append(words, l.Get(i).String())
			}
			for i, w := range Words(words) {
				l.Set(i, protoreflect.ValueOfString(w))
			}
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				scrub(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				scrub(mv.Message())
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			scrub(v.Message())
		}
		return true
	})
}
