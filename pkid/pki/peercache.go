package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/sitesec/sitesec/proto/pb"
)

// maxPeerCerts bounds the certificates cached per service set; the oldest
// go first.
const maxPeerCerts = 4096

// peerCache holds, per service set, the certificates IKE peers presented
// and pkid validated: what `show services ipsec-vpn certificates` lists
// and `clear services ipsec-vpn certificates` forgets. It is a view for
// the operator; validation never reads it.
type peerCache struct {
	mu   sync.Mutex
	sets map[string][]peerCert
	next map[string]int
}

type peerCert struct {
	entry int // the cache entry number shown, per service set from 1
	cert  *x509.Certificate
	sum   [32]byte
	root  bool // self-signed
}

// add records the chain (end entity first) of a valid validation.
func (pc *peerCache) add(set string, chain [][]byte) {
	if set == "" {
		return // not asked for a service set's peer
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.sets == nil {
		pc.sets = map[string][]peerCert{}
		pc.next = map[string]int{}
	}
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(der)
		l := pc.sets[set]
		if slices.ContainsFunc(l, func(p peerCert) bool { return p.sum == sum }) {
			continue
		}
		pc.next[set]++
		l = append(l, peerCert{entry: pc.next[set], cert: c, sum: sum, root: c.CheckSignatureFrom(c) == nil})
		if len(l) > maxPeerCerts {
			l = l[len(l)-maxPeerCerts:]
		}
		pc.sets[set] = l
	}
}

// servicesCertificates answers `show services ipsec-vpn certificates
// [service-set S] [brief|detail]` and `clear services ipsec-vpn
// certificates (service-set S | all) [certificate-cache-entry N]` (Junos's
// clear-ipsec-certificates-service-set: a service set or the flag all;
// `service-set all` is taken too).
func (a *App) servicesCertificates(verb string, words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"service-set", "certificate-cache-entry"}, []string{"brief", "detail", "all"})
	if err != nil {
		return errReply("%v", err)
	}
	set := ar.one("service-set")
	if ar.has("all") {
		if verb != "clear" || set != "" {
			return errReply("syntax error, unexpected \"all\"")
		}
		set = "all"
	}
	pc := &a.peers
	pc.mu.Lock()
	defer pc.mu.Unlock()
	switch verb {
	case "show":
		out := &pb.PKICertificates{Kind: "services-certificates", Detail: ar.has("detail")}
		var names []string
		for n := range pc.sets {
			if set == "" || n == set {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			for _, p := range pc.sets[n] {
				d := describe(p.cert, strconv.Itoa(p.entry), "", a.Now())
				d.ServiceSet = n
				d.Der = nil
				if p.root {
					d.Status = "root " + d.Status
				}
				out.Certificates = append(out.Certificates, d)
			}
		}
		return &pb.OpReply{Body: &pb.OpReply_PkiCertificates{PkiCertificates: out}}
	case "clear":
		if set == "" {
			return errReply("syntax error, expecting service-set <name> or all")
		}
		entry := 0
		if e := ar.one("certificate-cache-entry"); e != "" {
			if entry, err = strconv.Atoi(e); err != nil || entry < 1 {
				return errReply("certificate-cache-entry %q is not a number", e)
			}
		}
		if set != "all" {
			if _, ok := pc.sets[set]; !ok {
				return errReply("service-set %s has no cached certificates", set)
			}
		}
		for n := range pc.sets {
			if set != "all" && n != set {
				continue
			}
			if entry == 0 {
				delete(pc.sets, n)
				continue
			}
			before := len(pc.sets[n])
			pc.sets[n] = slices.DeleteFunc(pc.sets[n], func(p peerCert) bool { return p.entry == entry })
			if len(pc.sets[n]) == before && set != "all" {
				return errReply("certificate-cache-entry %d not found in service-set %s", entry, n)
			}
		}
		return &pb.OpReply{}
	}
	return errReply("syntax error: %s services ipsec-vpn certificates", verb)
}
