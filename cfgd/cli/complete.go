package cli

import (
	"sort"
	"strings"

	"github.com/sitesec/sitesec/cfgd/schema"
)

// opNode is one word of an operational command, for completion and '?'.
type opNode struct {
	word string
	help string
	// value is a placeholder ("<peer-address>") that takes any word.
	value bool
	next  []*opNode
	// more: the words after this one may repeat (brief, detail, ...).
	more bool
}

func op(word, help string, next ...*opNode) *opNode {
	return &opNode{word: word, help: help, next: next}
}

func val(word, help string) *opNode { return &opNode{word: word, help: help, value: true} }

// opts is a node whose children may follow each other in any order.
func opts(n *opNode) *opNode { n.more = true; return n }

var saLevels = []*opNode{op("brief", "Display brief output (default)"), op("detail", "Display detailed output")}

// opTree is the operational mode command tree. route.go says which daemon
// answers each command.
var opTree = op("", "",
	op("clear", "Clear information in the system",
		op("security", "Clear security information",
			op("pki", "Clear PKI information",
				op("ca-certificate", "Clear CA certificates"),
				op("local-certificate", "Clear local certificates"),
				op("certificate-request", "Clear certificate requests"),
				op("key-pair", "Clear key pairs"),
				op("crl", "Clear certificate revocation lists"))),
		op("services", "Clear services information",
			op("ipsec-vpn", "Clear IPsec VPN information",
				op("ike", "Clear IKE information",
					opts(op("security-associations", "Clear IKE security associations", val("<peer-address>", "Remote gateway address"))),
					op("statistics", "Clear IKE statistics")),
				op("ipsec", "Clear IPsec information",
					opts(op("security-associations", "Clear IPsec security associations", val("<service-set>", "Service set name"))),
					op("statistics", "Clear IPsec statistics")),
				op("certificates", "Clear certificate cache",
					op("all", "Clear all local and remote certificates"),
					op("service-set", "Name of service set for which to clear certificates", val("<service-set>", "Service set name")))))),
	op("configure", "Manipulate software configuration information"),
	op("exit", "Exit the management session"),
	op("monitor", "Show real-time debugging information",
		opts(op("bus", "Tap messages on the bus", val("<subject>", "Subject pattern (default: this router)"),
			op("count", "Stop after this many messages", val("<number>", "Messages")),
			op("duration", "Stop after this many seconds", val("<seconds>", "Seconds"))))),
	op("quit", "Exit the management session"),
	op("request", "Make system-level requests",
		op("security", "Make security requests",
			op("pki", "Make PKI requests",
				op("ca-certificate", "CA certificate requests",
					op("enroll", "Enroll a CA certificate over SCEP", op("ca-profile", "CA profile", val("<ca-profile>", "CA profile name"))),
					op("load", "Load a CA certificate from a file", op("ca-profile", "CA profile", val("<ca-profile>", "CA profile name"))),
					op("verify", "Verify a CA certificate", op("ca-profile", "CA profile", val("<ca-profile>", "CA profile name")))),
				op("generate-key-pair", "Generate a public/private key pair", op("certificate-id", "Certificate identifier", val("<certificate-id>", "Key pair name"))),
				op("generate-certificate-request", "Generate a PKCS#10 request", op("certificate-id", "Certificate identifier", val("<certificate-id>", "Key pair name"))),
				op("local-certificate", "Local certificate requests",
					op("enroll", "Enroll a local certificate"),
					op("generate-self-signed", "Generate a self-signed local certificate", op("certificate-id", "Certificate identifier", val("<certificate-id>", "Key pair name"))),
					op("load", "Load a local certificate from a file"),
					op("verify", "Verify a local certificate")),
				op("crl", "CRL requests", op("load", "Load a CRL from a file"))))),
	op("restart", "Restart a sitesec daemon",
		opts(op("cfgd", "Configuration daemon", op("gracefully", "Stop with SIGTERM (default)"), op("immediately", "Stop with SIGKILL"))),
		opts(op("fwdd", "Forwarding daemon", op("gracefully", "Stop with SIGTERM (default)"), op("immediately", "Stop with SIGKILL"))),
		op("nats", "The embedded bus server (reconnects every daemon)"),
		opts(op("kmd", "Key management daemon", op("gracefully", "Stop with SIGTERM (default)"), op("immediately", "Stop with SIGKILL"))),
		opts(op("pkid", "PKI daemon", op("gracefully", "Stop with SIGTERM (default)"), op("immediately", "Stop with SIGKILL")))),
	op("show", "Show system information",
		op("configuration", "Show current configuration"),
		op("security", "Show security information",
			op("pki", "Show PKI information",
				opts(op("ca-certificate", "Show CA certificates", saLevels...)),
				opts(op("local-certificate", "Show local certificates", saLevels...)),
				op("certificate-request", "Show certificate requests"),
				op("crl", "Show certificate revocation lists"))),
		op("services", "Show services information",
			op("ipsec-vpn", "Show IPsec VPN information",
				op("certificates", "Show certificates used by service sets"),
				op("ike", "Show IKE information",
					opts(op("security-associations", "Show IKE security associations", append(saLevels, val("<peer-address>", "Remote gateway address"))...)),
					op("statistics", "Show IKE statistics")),
				op("interfaces", "Show inside service interfaces and their Linux names"),
				op("ipsec", "Show IPsec information",
					opts(op("security-associations", "Show IPsec security associations",
						op("brief", "Display brief output (default)"), op("detail", "Display detailed output"),
						op("extensive", "Display extensive output"), op("hex", "Show SPIs in hexadecimal"),
						op("service-set", "Service set", val("<service-set>", "Service set name")))),
					opts(op("statistics", "Show IPsec statistics", saLevels...)))),
			op("service-sets", "Show service sets information",
				op("summary", "Show service sets summary", op("interface", "Name of services interface", val("<interface-name>", "Service interface (ms-1/2/0)"))))),
		op("system", "Show system information",
			op("commit", "Show pending commit and commit history"),
			op("processes", "Show sitesec processes"))),
)

// configTree is configuration mode's own commands; the words after set,
// delete, edit, show, ... come from the schema.
var configTree = op("", "",
	op("commit", "Commit current set of changes",
		op("check", "Check correctness of syntax; do not apply changes"),
		op("confirmed", "Automatically rollback if not confirmed", val("<minutes>", "Number of minutes until automatic rollback (1..65535)")),
		op("comment", "Message to include in commit log", val("<comment>", "Message"))),
	op("delete", "Delete a data element"),
	op("edit", "Edit a sub-element"),
	op("exit", "Exit from this level"),
	op("load", "Load configuration from ASCII file",
		op("merge", "Merge contents with existing configuration", val("<filename>", "File name (or 'terminal')")),
		op("override", "Override existing configuration", val("<filename>", "File name (or 'terminal')")),
		op("replace", "Replace configuration data", val("<filename>", "File name (or 'terminal')")),
		op("set", "Execute set of commands on existing configuration", val("<filename>", "File name (or 'terminal')"))),
	op("quit", "Quit from this level"),
	op("rollback", "Roll back to previous committed configuration", val("<number>", "Rollback number (0..49)")),
	op("run", "Run an operational-mode command"),
	op("set", "Set a parameter"),
	op("show", "Show a parameter"),
	op("top", "Exit to top level of configuration"),
	op("up", "Exit one level of configuration"),
)

// schemaCommands take a schema path after them.
var schemaCommands = map[string]bool{"set": true, "delete": true, "edit": true, "show": true, "deactivate": true, "activate": true}

// candidates lists what may follow line (the text before the cursor): the
// last word is the partial word being typed.
func (s *Shell) candidates(line string) []schema.Candidate {
	words := fields(line)
	if strings.HasSuffix(line, " ") || len(words) == 0 {
		words = append(words, "")
	}
	if s.configMode {
		if words[0] == "run" {
			return opCandidates(opTree, words[1:])
		}
		if len(words) > 1 && schemaCommands[words[0]] {
			c, err := schema.Complete(editWords(s.editPath), words[1:])
			if err != nil {
				return nil
			}
			return c
		}
		return opCandidates(configTree, words)
	}
	return opCandidates(opTree, words)
}

// opCandidates walks an opNode tree along words.
func opCandidates(root *opNode, words []string) []schema.Candidate {
	n := root
	for _, w := range words[:len(words)-1] {
		next := n.child(w)
		if next == nil {
			return nil
		}
		// A keyword with words of its own moves down; a bare option
		// of a node whose options repeat (brief, detail) stays.
		if len(next.next) > 0 || !n.more {
			n = next
		}
	}
	partial := words[len(words)-1]
	var out []schema.Candidate
	for _, c := range n.next {
		if c.value {
			if partial == "" {
				out = append(out, schema.Candidate{Word: c.word, Help: c.help, Value: true})
			}
			continue
		}
		if strings.HasPrefix(c.word, partial) {
			out = append(out, schema.Candidate{Word: c.word, Help: c.help})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Word < out[j].Word })
	return out
}

func (n *opNode) child(w string) *opNode {
	for _, c := range n.next {
		if c.word == w && !c.value {
			return c
		}
	}
	for _, c := range n.next {
		if c.value {
			return c
		}
	}
	return nil
}

// editWords turns "[edit services ipsec-vpn]" into its words.
func editWords(p string) []string {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "[edit"), "]")
	return fields(p)
}

// completeLine is tab completion: the new line and cursor when one
// candidate (or a longer common prefix) fits, and the candidates.
func (s *Shell) completeLine(line string) (string, []schema.Candidate) {
	cs := s.candidates(line)
	var words []schema.Candidate
	for _, c := range cs {
		if !c.Value {
			words = append(words, c)
		}
	}
	if len(words) == 0 {
		return line, cs
	}
	i := strings.LastIndexAny(line, " \t") + 1
	partial := line[i:]
	common := words[0].Word
	for _, c := range words[1:] {
		for !strings.HasPrefix(c.Word, common) {
			common = common[:len(common)-1]
		}
	}
	if len(words) == 1 && len(cs) == 1 {
		return line[:i] + common + " ", cs
	}
	if len(common) > len(partial) {
		return line[:i] + common, cs
	}
	return line, cs
}

// helpLines is the '?' listing.
func helpLines(cs []schema.Candidate) []string {
	out := []string{"Possible completions:"}
	for _, c := range cs {
		out = append(out, "  "+padRight(c.Word, 22)+" "+c.Help)
	}
	return out
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}
