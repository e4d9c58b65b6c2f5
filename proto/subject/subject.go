// Package subject names every subject on the sitesec bus and maps each one
// to the protobuf message it carries.
//
// A subject is <root>.<router>.<daemon>.<verb...>: the root (default
// "sitesec") lets several deployments share one NATS cluster, the router
// name lets several routers share one root, and the daemon is the one that
// serves the request or publishes the event.
package subject

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultRoot is the first token of every subject unless configured.
const DefaultRoot = "sitesec"

// DefaultRouter is the router name used when none is given.
const DefaultRouter = "r0"

// Daemon names, as they appear in subjects, trace files and process lists.
const (
	Sitesecd = "sitesecd"
	Cfgd     = "cfgd"
	Kmd      = "kmd"
	Pkid     = "pkid"
	Fwdd     = "fwdd"
	CLI      = "cli"
)

// Daemons are the four daemons the launcher runs, in start order.
var Daemons = []string{Cfgd, Pkid, Fwdd, Kmd}

// Verbs. The full subject is Space.Subject(daemon, verb).
const (
	// Every daemon.
	VerbHealth = "health" // publish Health
	VerbStatus = "status" // StatusRequest -> ProcessStatus
	VerbOp     = "op"     // OpRequest -> OpReply
	// VerbPrepare: ConfigSnapshot (the candidate) -> ApplyAck; the
	// daemon says what of it it could not run (commit's prepare round).
	VerbPrepare = "prepare"

	// sitesecd.
	VerbRestart   = "restart"   // RestartRequest -> RestartReply
	VerbProcesses = "processes" // StatusRequest -> ProcessList

	// cfgd.
	VerbConfig = "config" // ConfigEditRequest -> ConfigEditReply
	VerbAck    = "ack"    // publish ApplyAck

	// kmd.
	VerbPunt   = "punt"    // publish IKEDatagram (fwdd -> kmd)
	VerbSASync = "sa.sync" // SASyncRequest -> SASyncReply (fwdd -> kmd)

	// fwdd.
	VerbTransmit      = "transmit"       // publish IKEDatagram (kmd -> fwdd)
	VerbSAInstall     = "sa.install"     // SAInstall -> SAInstallReply
	VerbSADelete      = "sa.delete"      // SADelete -> SADeleteReply
	VerbSAUpdate      = "sa.update"      // SAUpdate -> SAUpdateReply
	VerbSAList        = "sa.list"        // SAListRequest -> SAListReply (kmd -> fwdd)
	VerbSAEvents      = "events.sa"      // publish SAEvent
	VerbGatewayEvents = "events.gateway" // publish GatewayEvent

	// pkid.
	VerbValidate   = "validate" // ValidateChainRequest -> ValidateChainReply
	VerbSign       = "sign"     // SignRequest -> SignReply
	VerbLocalCert  = "local"    // LocalCertificateRequest -> LocalCertificateReply
	VerbCAs        = "cas"      // CARequest -> CAReply
	VerbCertEvents = "events"   // publish CertificateEvent
)

// ConfigKey is the key of the committed configuration in the KV bucket.
const ConfigKey = "committed"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Space is one router's corner of the bus.
type Space struct {
	Root   string
	Router string
}

// New returns the Space for root and router, checking that both are single
// subject tokens that also make valid stream and bucket names.
func New(root, router string) (Space, error) {
	if root == "" {
		root = DefaultRoot
	}
	if router == "" {
		router = DefaultRouter
	}
	for _, n := range []string{root, router} {
		if !nameRE.MatchString(n) {
			return Space{}, fmt.Errorf("subject: %q is not a valid name (letters, digits, '-' and '_', at most 64)", n)
		}
	}
	return Space{Root: root, Router: router}, nil
}

// Subject returns <root>.<router>.<daemon>.<verb>.
func (s Space) Subject(daemon, verb string) string {
	return s.Root + "." + s.Router + "." + daemon + "." + verb
}

// All returns the wildcard that matches every subject of this router.
func (s Space) All() string { return s.Root + "." + s.Router + ".>" }

// ConfigBucket is the JetStream KV bucket holding the committed
// configuration of this router.
func (s Space) ConfigBucket() string { return s.Root + "_" + s.Router + "_config" }

// Split parses a subject into its space, daemon and verb. ok is false for a
// subject that does not have the sitesec shape.
func Split(subj string) (sp Space, daemon, verb string, ok bool) {
	parts := strings.SplitN(subj, ".", 4)
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return Space{}, "", "", false
	}
	return Space{Root: parts[0], Router: parts[1]}, parts[2], parts[3], true
}
