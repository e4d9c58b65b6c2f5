package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// The contract of `sitesecd --root DIR --config FILE` (DESIGN.md, README):
// it either commits FILE at start — a new revision that every daemon has
// applied by the time the router is reachable — or exits non-zero within a
// few seconds with the file's errors (file, line, message) on stderr,
// leaving no process behind.

// startupConfig is written the way Juniper's examples write a
// configuration: curly braces, comments, quoted key, a single-element list.
const startupConfig = `/* sitesec --config test: curly-brace syntax */
services {
    ipsec-vpn {
        ike {
            proposal ike-prop {
                authentication-method pre-shared-keys;
                dh-group group14;
                authentication-algorithm sha-256;
                encryption-algorithm aes-256-cbc;
                lifetime-seconds 3600;
            }
            policy ike-pol {
                version 2;
                proposals ike-prop;
                pre-shared-key ascii-text "juniper-test-key";
            }
        }
        ipsec {
            proposal esp-prop {
                protocol esp;
                authentication-algorithm hmac-sha1-96;
                encryption-algorithm aes-128-cbc;
            }
            policy esp-pol {
                perfect-forward-secrecy {
                    keys group14;
                }
                proposals esp-prop;
            }
        }
        traceoptions {
            file ipsec.log;
            flag all;
        }
    }
}
security {
    pki {
        ca-profile corp-ca {
            ca-identity corp;
        }
    }
}
`

// startupSet is the same configuration as set lines.
const startupSet = `# sitesec --config test: set syntax
set services ipsec-vpn ike proposal ike-prop authentication-method pre-shared-keys
set services ipsec-vpn ike proposal ike-prop dh-group group14
set services ipsec-vpn ike proposal ike-prop authentication-algorithm sha-256
set services ipsec-vpn ike proposal ike-prop encryption-algorithm aes-256-cbc
set services ipsec-vpn ike proposal ike-prop lifetime-seconds 3600
set services ipsec-vpn ike policy ike-pol version 2
set services ipsec-vpn ike policy ike-pol proposals ike-prop
set services ipsec-vpn ike policy ike-pol pre-shared-key ascii-text "juniper-test-key"
set services ipsec-vpn ipsec proposal esp-prop protocol esp
set services ipsec-vpn ipsec proposal esp-prop authentication-algorithm hmac-sha1-96
set services ipsec-vpn ipsec proposal esp-prop encryption-algorithm aes-128-cbc
set services ipsec-vpn ipsec policy esp-pol perfect-forward-secrecy keys group14
set services ipsec-vpn ipsec policy esp-pol proposals esp-prop
set services ipsec-vpn traceoptions file ipsec.log
set services ipsec-vpn traceoptions flag all
set security pki ca-profile corp-ca ca-identity corp
`

func TestConfigFileCommittedAtStart(t *testing.T) {
	for _, c := range []struct{ name, text string }{{"curly", startupConfig}, {"set", startupSet}} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "router.conf")
			if err := os.WriteFile(file, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			r := harness.Start(t, "--config", file)
			// Reachable means committed and applied: no waiting here.
			commits := r.MustCLI("show system commit")
			if !regexp.MustCompile(`(?m)^0\s+.*sitesecd`).MatchString(commits) {
				t.Errorf("show system commit has no revision by sitesecd:\n%s", commits)
			}
			out := r.MustCLI("show system processes")
			for _, d := range []string{"cfgd", "kmd", "pkid", "fwdd"} {
				m := regexp.MustCompile(`(?m)^` + d + `\s+\d+\s+running\s+\S+\s+\d+\s+(\d+)\s`).FindStringSubmatch(out)
				if m == nil || m[1] != "1" {
					t.Errorf("%s does not run revision 1:\n%s", d, out)
				}
			}
			conf := r.MustCLI("show configuration services ipsec-vpn ike policy ike-pol")
			if !strings.Contains(conf, "proposals ike-prop;") || !strings.Contains(conf, "pre-shared-key") {
				t.Errorf("committed configuration lacks the policy:\n%s", conf)
			}
			// kmd runs it: its trace file is the one the file names.
			if _, err := os.Stat(filepath.Join(r.Root, "var", "log", "ipsec.log")); err != nil {
				t.Errorf("kmd did not apply traceoptions file ipsec.log: %v", err)
			}
		})
	}
}

func TestConfigFileRejectedAtStart(t *testing.T) {
	bin := harness.Bin(t)
	cases := []struct {
		name, text string
		// want are the lines of stderr that must appear.
		want []string
	}{
		{"syntax error", strings.Replace(startupConfig, "dh-group group14;", "dh-group group14\n                bogus-statement 7;", 1),
			[]string{`router.conf:8:`, "bogus-statement"}},
		{"bad value", strings.Replace(startupSet, "lifetime-seconds 3600", "lifetime-seconds 99", 1),
			[]string{`router.conf:6:`, "lifetime-seconds"}},
		{"commit check", strings.Replace(startupConfig, "proposals esp-prop;", "proposals no-such-proposal;", 1),
			[]string{"Referenced proposal is not defined"}},
		{"missing file", "", []string{"--config", "no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			file := filepath.Join(dir, "router.conf")
			if c.text != "" {
				if err := os.WriteFile(file, []byte(c.text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(filepath.Join(bin, "sitesecd"), "--root", root, "--config", file)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				<-done
				t.Fatalf("sitesecd still running 30 s after start with a bad --config; stderr:\n%s", stderr.String())
			}
			took := time.Since(start)
			t.Logf("exit after %s: %v; stderr:\n%s", took.Round(time.Millisecond), err, stderr.String())
			if err == nil {
				t.Fatalf("sitesecd exited 0 with a bad --config")
			}
			if took > 20*time.Second {
				t.Errorf("took %s to give up, want a few seconds", took)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q", w)
				}
			}
			if strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("stack trace on stderr")
			}
			if left := processesUnder(root); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
			if _, err := os.Stat(filepath.Join(root, "var", "run", "sitesec", "bus.json")); err == nil {
				t.Errorf("bus file left behind")
			}
		})
	}
}

// processesUnder lists the processes whose command line names root.
func processesUnder(root string) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(b, []byte(root)) {
			continue
		}
		left = append(left, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return left
}
