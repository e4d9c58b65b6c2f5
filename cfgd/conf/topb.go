package conf

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/cfgd/schema"
	"github.com/sitesec/sitesec/proto/pb"
)

// ToPB converts the active statements of cfg to the typed configuration
// the daemons receive. The mapping comes from the schema's PB hints: a
// container is a message field, a list a repeated field, a leaf a scalar
// (enumerations by value name), Inline levels add their Prefix to the
// field names below them. Inactive statements are left out.
func ToPB(cfg *Node) (*pb.Config, error) {
	out := &pb.Config{}
	if err := fill(cfg, out.ProtoReflect(), ""); err != nil {
		return nil, err
	}
	return out, nil
}

func fill(n *Node, m protoreflect.Message, prefix string) error {
	for _, c := range n.Children {
		if c.Inactive || c.Schema.PB == "-" {
			continue
		}
		if err := convert(c, m, prefix); err != nil {
			return err
		}
	}
	return nil
}

func fieldName(s *schema.Node, prefix string) string {
	f := s.Field()
	if strings.HasPrefix(f, "=") {
		return f[1:]
	}
	return prefix + f
}

func field(m protoreflect.Message, name string, s *schema.Node) (protoreflect.FieldDescriptor, error) {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		return nil, fmt.Errorf("conf: schema %q maps to %s.%s, which does not exist", s.Path(), m.Descriptor().Name(), name)
	}
	return fd, nil
}

func convert(c *Node, m protoreflect.Message, prefix string) error {
	s := c.Schema
	switch s.Kind {
	case schema.Container:
		if s.Inline {
			if err := fixed(s, m); err != nil {
				return err
			}
			return fill(c, m, prefix+s.Prefix)
		}
		fd, err := field(m, fieldName(s, prefix), s)
		if err != nil {
			return err
		}
		sub := m.Mutable(fd).Message()
		if err := fixed(s, sub); err != nil {
			return err
		}
		return fill(c, sub, "")
	case schema.List:
		if s.Inline {
			return fill(c, m, prefix+s.Prefix)
		}
		fd, err := field(m, fieldName(s, prefix), s)
		if err != nil {
			return err
		}
		if !fd.IsList() {
			return fmt.Errorf("conf: schema %q maps to %s, which is not repeated", s.Path(), fd.FullName())
		}
		l := m.Mutable(fd).List()
		if fd.Message() == nil {
			v, err := scalar(fd, c.Key, s)
			if err != nil {
				return err
			}
			l.Append(v)
			return nil
		}
		el := l.NewElement()
		em := el.Message()
		if len(s.KeyWords) > 0 {
			f := strings.Fields(c.Key)
			for i := 0; i+1 < len(f); i += 2 {
				kfd, err := field(em, strings.ReplaceAll(f[i], "-", "_"), s)
				if err != nil {
					return err
				}
				em.Set(kfd, protoreflect.ValueOfString(f[i+1]))
			}
		} else if s.KeyPB != "-" {
			kn := s.KeyPB
			if kn == "" {
				kn = "name"
			}
			kfd, err := field(em, kn, s)
			if err != nil {
				return err
			}
			v, err := scalar(kfd, c.Key, s)
			if err != nil {
				return err
			}
			em.Set(kfd, v)
		}
		if err := fixed(s, em); err != nil {
			return err
		}
		if err := fill(c, em, ""); err != nil {
			return err
		}
		l.Append(el)
		return nil
	case schema.Leaf:
		fd, err := field(m, fieldName(s, prefix), s)
		if err != nil {
			return err
		}
		var v protoreflect.Value
		switch {
		case s.Enum != "":
			ev := fd.Enum().Values().ByName(protoreflect.Name(s.Enum))
			if ev == nil {
				return fmt.Errorf("conf: schema %q: enum value %s does not exist", s.Path(), s.Enum)
			}
			v = protoreflect.ValueOfEnum(ev.Number())
		case s.Type == nil:
			if fd.Kind() != protoreflect.BoolKind {
				return fmt.Errorf("conf: schema %q: flag maps to non-bool %s", s.Path(), fd.FullName())
			}
			v = protoreflect.ValueOfBool(true)
		default:
			plain, err := s.Plain(c.Key)
			if err != nil {
				return fmt.Errorf("conf: %s: %w", s.Path(), err)
			}
			if v, err = scalar(fd, s.Type.Canon(plain), s); err != nil {
				return err
			}
		}
		m.Set(fd, v)
		return fixed(s, m)
	case schema.LeafList:
		fd, err := field(m, fieldName(s, prefix), s)
		if err != nil {
			return err
		}
		if !fd.IsList() {
			return fmt.Errorf("conf: schema %q maps to %s, which is not repeated", s.Path(), fd.FullName())
		}
		l := m.Mutable(fd).List()
		for _, x := range c.Values {
			v, err := scalar(fd, x, s)
			if err != nil {
				return err
			}
			l.Append(v)
		}
	}
	return nil
}

// fixed sets the "field=value" pairs of s on m.
func fixed(s *schema.Node, m protoreflect.Message) error {
	for _, kv := range s.Fixed {
		k, v, _ := strings.Cut(kv, "=")
		fd, err := field(m, k, s)
		if err != nil {
			return err
		}
		val, err := scalar(fd, v, s)
		if err != nil {
			return err
		}
		m.Set(fd, val)
	}
	return nil
}

// scalar converts a configuration value to the kind of field fd.
func scalar(fd protoreflect.FieldDescriptor, v string, s *schema.Node) (protoreflect.Value, error) {
	bad := func(err error) (protoreflect.Value, error) {
		if s.Secret {
			return protoreflect.Value{}, fmt.Errorf("conf: %s: bad secret value", s.Path())
		}
		return protoreflect.Value{}, fmt.Errorf("conf: %s value %q: %w", s.Path(), v, err)
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad(err)
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.BytesKind:
		if s.Hex {
			b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X"))
			if err != nil {
				return bad(err)
			}
			return protoreflect.ValueOfBytes(b), nil
		}
		return protoreflect.ValueOfBytes([]byte(v)), nil
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
		var n uint64
		var err error
		if s.Type != nil && s.Type.Kind == schema.Size {
			n, err = schema.ParseSize(v)
		} else {
			n, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return bad(err)
		}
		if fd.Kind() == protoreflect.Uint32Kind {
			if n > 1<<32-1 {
				return bad(fmt.Errorf("out of range"))
			}
			return protoreflect.ValueOfUint32(uint32(n)), nil
		}
		return protoreflect.ValueOfUint64(n), nil
	case protoreflect.EnumKind:
		want := "_" + strings.ToUpper(strings.ReplaceAll(v, "-", "_"))
		vals := fd.Enum().Values()
		for i := 0; i < vals.Len(); i++ {
			if strings.HasSuffix(string(vals.Get(i).Name()), want) {
				return protoreflect.ValueOfEnum(vals.Get(i).Number()), nil
			}
		}
		return bad(fmt.Errorf("no enum value in %s", fd.Enum().FullName()))
	}
	return bad(fmt.Errorf("unsupported field kind %s", fd.Kind()))
}
