package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployConfigsAreCurrent keeps deploy/nats/*.conf equal to what the
// broker's permissions give today.
func TestDeployConfigsAreCurrent(t *testing.T) {
	for _, r := range []string{"r1", "r2"} {
		var b strings.Builder
		if err := write(&b, "sitesec", r); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "..", "deploy", "nats", r+".conf")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != b.String() {
			t.Errorf("%s is stale: go run ./tests/cmd/natsconf --name %s > deploy/nats/%s.conf", path, r, r)
		}
	}
}

// userBlock returns the configuration block of user u.
func userBlock(t *testing.T, conf, u string) string {
	t.Helper()
	_, rest, ok := strings.Cut(conf, "user: \""+u+"\"")
	if !ok {
		t.Fatalf("no user %s", u)
	}
	block, _, _ := strings.Cut(rest, "\n    }\n")
	return block
}

func TestPermissions(t *testing.T) {
	var b strings.Builder
	if err := write(&b, "sitesec", "r7"); err != nil {
		t.Fatal(err)
	}
	conf := b.String()
	// line returns the line of blk that starts with prefix (after spaces).
	line := func(blk, prefix string) string {
		for _, l := range strings.Split(blk, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return l
			}
		}
		return ""
	}
	cases := []struct {
		user, line  string
		must, never []string
	}{
		{"kmd", "password:", []string{"$SITESEC_PW_KMD"}, nil},
		// Only kmd installs SAs (their keys) and asks pkid to sign.
		{"kmd", "publish:", []string{`"sitesec.r7.fwdd.sa.install"`, `"sitesec.r7.pkid.sign"`}, []string{"$KV.", "STREAM.CREATE", "STREAM.UPDATE"}},
		{"cfgd", "publish:", []string{`"$KV.sitesec_r7_config.>"`}, []string{"sitesec.r7.fwdd.sa", "pkid.sign", "kmd.sa.sync", "STREAM.CREATE", "STREAM.UPDATE"}},
		{"fwdd", "publish:", []string{`"sitesec.r7.kmd.punt"`}, []string{"$KV.", "fwdd.sa.", "pkid.", "fwdd.transmit"}},
		// Only fwdd reads SA installs; only pkid serves validate.
		{"fwdd", "subscribe:", []string{`"sitesec.r7.fwdd.sa.install"`}, []string{"pkid.validate", `"sitesec.r7.>"`}},
		{"pkid", "subscribe:", []string{`"sitesec.r7.pkid.validate"`}, []string{"fwdd.sa.", `"sitesec.r7.>"`}},
		{"pkid", "allow_responses", []string{"true"}, nil},
		// sitesecd creates the buckets and reads no value.
		{"sitesecd", "publish:", []string{`"$JS.API.STREAM.CREATE.KV_sitesec_r7_config"`}, []string{"$KV.", "DIRECT.GET", "CONSUMER.CREATE", "pkid.sign"}},
		// The cli reads its own replies only, and taps everything but
		// the SA keys and the prepare round's candidates (they carry keys).
		{"cli", "subscribe:", []string{`"_INBOX.cli.>"`, `"sitesec.r7.>"`, `deny: [`, `"sitesec.r7.fwdd.sa.delete"`, `"sitesec.r7.fwdd.sa.install"`, `"sitesec.r7.kmd.prepare"`}, []string{`"_INBOX.>"`}},
		{"cli", "password:", []string{"$SITESEC_PW_CLI"}, nil},
	}
	for _, c := range cases {
		blk := line(userBlock(t, conf, c.user), c.line)
		for _, m := range c.must {
			if !strings.Contains(blk, m) {
				t.Errorf("%s %s missing %s in\n%s", c.user, c.line, m, blk)
			}
		}
		for _, m := range c.never {
			if strings.Contains(blk, m) {
				t.Errorf("%s %s must not have %s in\n%s", c.user, c.line, m, blk)
			}
		}
	}
	if err := write(&b, "sitesec", "bad.name"); err == nil {
		t.Error("router name with a dot accepted")
	}
}
