package trace

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func render(p string) string {
	b, _, _ := appendLine(nil, t0, "kmd", 1234, []byte(p), nil)
	return strings.TrimPrefix(string(b), "Nov 27 21:15:02.123456 kmd[1234]: ")
}

func TestAppendLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"flag and message", `{"_f":"ike","_l":3,"message":"hello"}`, "ike: hello\n"},
		{"error level", `{"_f":"timer","_l":0,"message":"boom"}`, "timer: error: boom\n"},
		{"warning level", `{"_f":"timer","_l":1,"message":"hm"}`, "timer: warning: hm\n"},
		{"lifecycle", `{"_f":"","_l":-1,"message":"started"}`, "started\n"},
		{"no header", `{"a":1,"message":"m"}`, "m a=1\n"},
		{"field order kept", `{"_f":"ike","_l":3,"z":1,"a":"x","message":"m"}`, "ike: m z=1 a=x\n"},
		{"no message", `{"_f":"ike","_l":3,"a":"x"}`, "ike: a=x\n"},
		{"empty object", `{}`, "\n"},
		{"spaces around", " { \"_f\" : \"ike\" , \"_l\" : 3 , \"message\" : \"m\" } \n", "ike: m\n"},
		{"nested compacted", `{"o":{"a": [1, 2], "b":"x y"}}`, `o={"a":[1,2],"b":"x y"}` + "\n"},
		{"quoted value kept", `{"k":"a b"}`, `k="a b"` + "\n"},
		{"escaped value kept", `{"k":"a\"b"}`, `k="a\"b"` + "\n"},
		{"empty value", `{"k":""}`, `k=""` + "\n"},
		{"message escapes", `{"message":"a\nb\t\"c\"\\d\/e\u00e9\u0001"}`, `a\nb\t"c"\d/eé\x01` + "\n"},
		{"surrogate pair", `{"message":"\ud83d\ude00"}`, "\U0001F600\n"},
		{"lone surrogate", `{"message":"\ud83d!"}`, "\uFFFD!\n"},
		{"bad unicode escape", `{"message":"\u12"}`, `\u12` + "\n"},
		{"NaN passes", `{"f":NaN,"g":-Inf}`, "f=NaN g=-Inf\n"},
		{"two message fields", `{"message":"field","x":1,"message":"real"}`, "real message=field x=1\n"},
		{"not an object", "plain text\n", "plain text\n"},
		{"truncated", `{"a":"b`, `{"a":"b` + "\n"},
		{"control bytes in garbage", "x\x00y\nz", `x\x00y\nz` + "\n"},
		{"missing colon", `{"a" 1}`, `{"a" 1}` + "\n"},
		{"missing value", `{"a":}`, `{"a":}` + "\n"},
		{"trailing garbage", `{"a":1} x`, `{"a":1} x` + "\n"},
		{"bad level field", `{"_f":"ike","_l":"x","message":"m"}`, `m _f=ike _l=x` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(tc.in); got != tc.want {
				t.Fatalf("render(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAppendLineTimestamp(t *testing.T) {
	at := time.Date(2026, time.March, 5, 7, 8, 9, 1000, time.UTC)
	b, _, _ := appendLine(nil, at, "fwdd", 7, []byte(`{"message":"x"}`), nil)
	if want := "Mar  5 07:08:09.000001 fwdd[7]: x\n"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// FuzzAppendLine: whatever zerolog (or a caller's RawJSON) hands the
// writer, the renderer must not panic and must produce exactly one line.
func FuzzAppendLine(f *testing.F) {
	for _, s := range []string{
		`{"_f":"ike","_l":3,"peer":"192.0.2.1","message":"IKE_SA_INIT received"}`,
		`{"o":{"a":[1,{"b":"}"}]},"message":"x\ny"}`,
		`{"message":"\ud83d\ude00\u0000"}`, `{`, `"`, `{"a":"\`, `{"a":[}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		b, _, _ := appendLine(nil, t0, "kmd", 1, p, nil)
		if len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
			t.Fatalf("not one line: %q -> %q", p, b)
		}
	})
}

func BenchmarkAppendLine(b *testing.B) {
	p := []byte(`{"_f":"ike","_l":3,"peer":"192.0.2.1","spi":7,"message":"IKE_SA_INIT received"}` + "\n")
	var buf []byte
	var fs []field
	b.ReportAllocs()
	for b.Loop() {
		buf, fs, _ = appendLine(buf[:0], t0, "kmd", 1234, p, fs)
	}
}
