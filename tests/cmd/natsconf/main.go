// Command natsconf writes the nats-server configuration of one router for
// docker compose (deploy/nats/<router>.conf): TLS only (deploy/certs.sh's
// server certificate), JetStream on, and one user per
// daemon with the rights the launcher gives its embedded server
// (broker.RightsOf, from the ownership table subject.AccessTable), so that
// a compose router is as locked down as a sitesecd one. Passwords are not in the file: each is
// the environment variable SITESEC_PW_<USER> of the nats container.
//
//	natsconf --name r1 > deploy/nats/r1.conf
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

func main() {
	name := flag.String("name", "r1", "router name")
	root := flag.String("bus-root", "sitesec", "first token of every subject")
	flag.Parse()
	if err := write(os.Stdout, *root, *name); err != nil {
		fmt.Fprintf(os.Stderr, "natsconf: %v\n", err)
		os.Exit(1)
	}
}

// PasswordVar is the environment variable holding user's password.
func PasswordVar(user string) string { return "SITESEC_PW_" + strings.ToUpper(user) }

func write(w io.Writer, root, router string) error {
	space, err := subject.New(root, router)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server configuration of router %s, written by tests/cmd/natsconf\n", router)
	fmt.Fprintf(&b, "# (go run ./tests/cmd/natsconf --name %s); do not edit.\n", router)
	fmt.Fprintf(&b, "server_name: %s\nlisten: \"0.0.0.0:4222\"\n", router)
	b.WriteString("jetstream {\n  store_dir: \"/data\"\n}\n")
	// TLS only: the bus carries SA keys and leaves the container. The
	// certificates are deploy/certs.sh's, mounted at /certs.
	b.WriteString("tls {\n  cert_file: \"/certs/server.pem\"\n  key_file: \"/certs/server-key.pem\"\n  timeout: 2\n}\n")
	b.WriteString("authorization {\n  users = [\n")
	// sitesecd is here for `sitesecd --setup-bus`, which creates the
	// buckets (only it may).
	for _, u := range append([]string{subject.Sitesecd, subject.CLI}, subject.Daemons...) {
		r := broker.RightsOf(space, u)
		fmt.Fprintf(&b, "    {\n      user: %q\n      password: $%s\n      permissions: {\n", u, PasswordVar(u))
		fmt.Fprintf(&b, "        publish: { allow: %s, deny: %s }\n", list(r.PublishAllow), list(r.PublishDeny))
		fmt.Fprintf(&b, "        subscribe: { allow: %s, deny: %s }\n", list(r.SubscribeAllow), list(r.SubscribeDeny))
		if r.Responses {
			b.WriteString("        allow_responses: true\n")
		}
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	_, err = io.WriteString(w, b.String())
	return err
}

func list(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
