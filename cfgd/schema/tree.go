package schema

// The hierarchy of SPEC section 1. Field names follow proto/sitesec/v1/
// config.proto; where the Junos statement name differs from the field, PB
// says so. Keep this in the order Junos renders statements.

// dfBits are the don't-fragment knobs; a function because a node has one
// parent.
func dfBits() []*Node {
	return []*Node{
		F("clear-dont-fragment-bit", "Clear the don't-fragment bit on inner IPv4 packets").enum("dont_fragment", "DF_BIT_CLEAR"),
		F("copy-dont-fragment-bit", "Copy the inner don't-fragment bit to the outer header").enum("dont_fragment", "DF_BIT_COPY"),
		F("set-dont-fragment-bit", "Set the don't-fragment bit in the outer header").enum("dont_fragment", "DF_BIT_SET"),
	}
}

var (
	dhGroups   = OneOf("group1", "group2", "group5", "group14", "group15", "group16", "group19", "group20", "group24", "group31")
	encCBC     = []string{"des-cbc", "3des-cbc", "aes-128-cbc", "aes-192-cbc", "aes-256-cbc"}
	ikeEnc     = OneOf(append(encCBC, "aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")...)
	ipsecEnc   = OneOf(append(encCBC, "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-poly1305")...)
	ipsecAuth  = OneOf("hmac-md5-96", "hmac-sha1-96", "hmac-sha-256-128", "hmac-sha-256-96", "hmac-sha2-256", "hmac-sha-384-192", "hmac-sha-512-256")
	manualAuth = OneOf("hmac-md5-96", "hmac-sha1-96", "hmac-sha2-256", "hmac-sha-256-128")
	traceLevel = OneOf("error", "warning", "notice", "info", "verbose", "all")
	kmdFlags   = OneOf("all", "certificates", "database", "general", "ike", "parse", "policy-manager", "routing-socket", "snmp", "timer", "ams", "lic")
	pkidFlags  = OneOf("all", "certificate-verification", "online-crl-check", "enrollment", "acme-enrollment")
	procFlags  = OneOf("all", "commit", "config", "bus", "esp", "packet", "sa", "socket", "tun", "route", "general")
)

// key is a secret written as ascii-text or hexadecimal (pb.Key).
func key(name, help string) *Node {
	return C(name, help,
		V("ascii-text", Text("<key>", 1, 255), "Key as ASCII text").pb("value").choice("key").secret(),
		V("hexadecimal", THexKey, "Key in hexadecimal").pb("value").choice("key").secret().hex().fixed("hexadecimal=true"),
	)
}

func traceoptions(flags *Type, help string) *Node {
	return C("traceoptions", help,
		C("file", "Trace file information",
			V("filename", Text("<filename>", 1, 1024), "Name of file in which to write trace information").positional().pb("file"),
			V("files", Range(2, 1000), "Maximum number of trace files").def("3"),
			V("size", TSize, "Maximum trace file size"),
			V("match", Text("<regex>", 1, 1024), "Regular expression for lines to be logged"),
			F("world-readable", "Allow any user to read the log file").choice("readable"),
			F("no-world-readable", "Don't allow any user to read the log file").choice("readable"),
		).flat().inline(""),
		L("flag", flags, "Tracing parameters").pb("flags"),
		V("level", traceLevel, "Level of debugging output").def("error"),
		F("no-remote-trace", "Disable remote tracing"),
	)
}

func dpd() *Node {
	return C("dead-peer-detection", "Dead peer detection options",
		V("interval", Range(1, 180), "The interval at which to send DPD messages (seconds)").def("10"),
		V("threshold", Range(1, 10), "Maximum number of DPD messages").def("3"),
	)
}

func respondBadSPI() *Node {
	return C("respond-bad-spi", "Respond to IPsec packets with bad SPI values",
		V("max-responses", Range(1, 30), "Maximum number of times to respond").def("5"),
	).inline("respond_bad_spi_").unused("ESP with an unknown SPI is dropped and counted (invalid SPI), never answered with INVALID_SPI")
}

func interfaces() *Node {
	family := C("family", "Protocol family",
		C("inet", "IPv4 parameters",
			C("service", "Service set applied to this logical interface (interface-style service sets)",
				C("input", "Services applied to traffic the interface receives",
					L("service-set", Name(63), "Service set").pb("=service_input").ref("services service-set"),
				).inline(""),
				C("output", "Services applied to traffic the interface sends",
					L("service-set", Name(63), "Service set").pb("=service_output").ref("services service-set"),
				).inline(""),
			).inline(""),
			L("address", TPrefix, "Interface address/destination prefix").pb("addresses"),
			V("mtu", Range(256, 9192), "Protocol family maximum transmission unit").pb("=mtu"),
		).inline("inet_"),
		C("inet6", "IPv6 parameters",
			L("address", TPrefix, "Interface address/destination prefix").pb("addresses"),
		).inline("inet6_"),
	).inline("").join()
	unit := L("unit", Range(0, 1073741823), "Logical interface",
		V("description", Text("<description>", 1, 900), "Text description of interface"),
		F("disable", "Disable this logical interface"),
		V("service-domain", OneOf("inside", "outside"), "Service domain of the service interface"),
		C("dial-options", "Dial options",
			V("ipsec-interface-id", Name(63), "IPsec interface ID for dynamic endpoints"),
			F("dedicated", "Dedicated mode: one tunnel per logical interface").choice("mode"),
			F("shared", "Shared mode: many tunnels per logical interface").choice("mode"),
		),
		family,
	).pb("units").keyPB("number")
	return C("interfaces", "Interface configuration",
		L("interface", TIFD, "Interface name",
			V("description", Text("<description>", 1, 900), "Text description of interface"),
			F("disable", "Disable this interface"),
			V("encapsulation", OneOf("ppp", "cisco-hdlc", "frame-relay", "ethernet", "ethernet-ccc", "flexible-ethernet-services", "vlan-ccc"), "Physical link-layer encapsulation").inert("the link layer is the host's"),
			F("vlan-tagging", "802.1Q VLAN tagging").inert("VLANs are the host's"),
			C("services-options", "Service interface options",
				C("syslog", "System logging of service events",
					L("host", Text("<host>", 1, 255), "Host to send the messages to ('local' for the router's log)",
						V("services", OneOf("any", "emergency", "alert", "critical", "error", "warning", "notice", "info", "none"), "Severity of service messages"),
					),
				),
			).inert("services syslog goes to the daemons' trace files"),
			unit,
		).keyless().pb("interfaces"),
	).inline("")
}

func routingOptions() *Node {
	return C("routing-options", "Protocol-independent routing option configuration",
		V("router-id", TAddr4, "Router identifier").inert("no routing protocol runs"),
		V("autonomous-system", Range(1, 4294967295), "Autonomous system number").inert("no routing protocol runs"),
		C("static", "Static routing information",
			L("route", TPrefix, "Static route",
				LL("next-hop", Text("<next-hop>", 1, 64), "Next hop: an address or an inside service interface").pb("next_hops"),
				F("discard", "Drop packets to destination; send no ICMP unreachables"),
				V("preference", Range(0, 4294967295), "Preference value"),
				V("metric", Range(0, 4294967295), "Metric value"),
			).flat().pb("static_routes").keyPB("prefix"),
		).inline(""),
	)
}

func serviceSet() *Node {
	return L("service-set", Name(63), "Define a service set",
		C("interface-service", "Service set is interface based",
			V("service-interface", TService, "Name of adaptive services interface"),
		).choice("style"),
		C("next-hop-service", "Service set is next-hop based",
			V("inside-service-interface", TIFL, "Service interface for inside network"),
			V("outside-service-interface", TIFL, "Service interface for outside network"),
			V("service-interface-pool", Name(63), "Service interface pool"),
		).choice("style"),
		L("ipsec-vpn-rules", Name(63), "IPsec VPN rule to be included in this service set").ref("services ipsec-vpn rule"),
		L("ipsec-vpn-rule-sets", Name(63), "IPsec VPN rule set to be included in this service set").ref("services ipsec-vpn rule-set"),
		C("service-set-options", "Service set options",
			C("header-integrity-check", "Check the integrity of packet headers",
				F("enable-all", "Enable all header integrity checks"),
			).inline("header_integrity_check_"),
		),
		C("ipsec-vpn-options", "Service set IPsec VPN options", append([]*Node{
			C("local-gateway", "Local gateway address",
				V("address", TAddr, "Local gateway address").positional(),
				V("interface", TIFL, "Interface holding the local gateway address"),
				V("routing-instance", Name(128), "Name of routing instance that hosts the local gateway").def("default").ref("routing-instances"),
				V("gw-interface", TIFL, "Interface (IFL/unit) holding the gateway address"),
			).flat(),
			V("ike-access-profile", Name(32), "IKE access profile for dynamic endpoints").ref("access profile"),
			LL("trusted-ca", Name(32), "Trusted certificate authority profiles").pb("trusted_ca").ref("security pki ca-profile"),
			F("no-certificate-chain-in-ike", "Send only the end-entity certificate in IKE"),
			V("anti-replay-window-size", Range(64, 4096), "Size of the anti-replay window (bits)"),
			F("no-anti-replay", "Disable the anti-replay check"),
		}, append(dfBits(),
			F("passive-mode-tunneling", "Tunnel packets without active IP checks"),
			V("tunnel-mtu", Range(256, 9192), "Maximum transmit packet size").def("1500"),
			C("udp-encapsulate", "UDP encapsulation of IPsec data traffic",
				V("dest-port", Range(1025, 65535), "UDP destination port").def("4565"),
			).pb("udp_encapsulate"),
			F("no-nat-traversal", "Disable NAT traversal for this service set"),
			V("nat-keepalive", Range(1, 300), "NAT-T keepalive interval (seconds)"),
		)...)...),
	).pb("service_sets")
}

func manualDirection() *Node {
	return L("direction", OneOf("inbound", "outbound", "bidirectional"), "Direction for which the SA is applied",
		V("protocol", OneOf("ah", "esp", "bundle"), "Define an IPsec protocol for the security association"),
		V("spi", Range(256, 16639), "Security parameter index"),
		V("auxiliary-spi", Range(256, 16639), "ESP's SPI in a bundle"),
		C("authentication", "Define authentication parameters",
			V("algorithm", manualAuth, "Authentication algorithm"),
			key("key", "Authentication key").pb("key"),
		).inline("authentication_"),
		C("encryption", "Define encryption parameters",
			V("algorithm", OneOf(encCBC...), "Encryption algorithm"),
			key("key", "Encryption key").pb("key"),
		).inline("encryption_"),
	).pb("directions").keyPB("direction")
}

func term() *Node {
	then := C("then", "Action to take if the 'from' condition is matched", append([]*Node{
		V("remote-gateway", TAddr, "Remote gateway address"),
		V("backup-remote-gateway", TAddr, "Backup remote gateway address (enables dead peer detection)"),
		C("dynamic", "Dynamic security association",
			V("ike-policy", Name(32), "Name of the IKE policy").ref("services ipsec-vpn ike policy"),
			V("ipsec-policy", Name(32), "Name of the IPsec policy").ref("services ipsec-vpn ipsec policy"),
			V("natt-install-interval", Range(0, 10), "NAT-T SA install interval (seconds)").def("0").unused("kmd installs a NAT-T SA at once"),
		).choice("sa"),
		C("manual", "Manual security association", manualDirection()).choice("sa"),
		V("anti-replay-window-size", Range(64, 4096), "Size of the anti-replay window (bits)"),
		F("no-anti-replay", "Disable the anti-replay check"),
	}, append(dfBits(),
		V("tunnel-mtu", Range(256, 9192), "Maximum transmit packet size"),
		F("initiate-dead-peer-detection", "Initiate dead peer detection"),
		dpd(),
		F("copy-ttl-from-inner-ip-header", "Copy the TTL from the inner IP header"),
		V("ttl", Range(1, 254), "Time to live of the outer header").def("64"),
		F("copy-tos-from-inner-ip-header", "Copy the ToS from the inner IP header"),
		V("tos", Range(0, 255), "Type of service of the outer header").def("0"),
		F("syslog", "Generate system log messages").inert("tunnel events go to the kmd trace file"),
	)...)...)
	return L("term", Name(63), "Define an IPsec VPN term",
		C("from", "Define match criteria",
			L("source-address", TPrefix, "Match IP source address").max(1).braces(),
			L("destination-address", TPrefix, "Match IP destination address").max(1).braces(),
			V("ipsec-inside-interface", TIFL, "IPsec inside interface"),
		),
		then,
	).pb("terms")
}

func ike() *Node {
	return C("ike", "IKE configuration",
		L("proposal", Name(32), "Define an IKE proposal",
			V("description", Text("<description>", 1, 80), "Text description of IKE proposal"),
			V("authentication-method", OneOf("pre-shared-keys", "rsa-signatures", "dsa-signatures", "ecdsa-signatures-256", "ecdsa-signatures-384"), "Define authentication method"),
			V("dh-group", dhGroups, "Define Diffie-Hellman group").def("group1"),
			V("authentication-algorithm", OneOf("md5", "sha1", "sha-256", "sha-384", "sha-512"), "Define authentication algorithm").def("sha1"),
			V("encryption-algorithm", ikeEnc, "Define encryption algorithm").def("3des-cbc"),
			V("lifetime-seconds", Range(180, 86400), "Lifetime, in seconds").def("3600"),
		).pb("proposals"),
		L("policy", Name(32), "Define an IKE policy",
			V("description", Text("<description>", 1, 80), "Text description of IKE policy"),
			V("mode", OneOf("main", "aggressive"), "Define the IKE mode for Phase 1").def("main"),
			V("version", OneOf("1", "2"), "Define the IKE version to use").def("1"),
			LL("proposals", Name(32), "Name of the proposal").ref("services ipsec-vpn ike proposal"),
			V("proposal-set", OneOf("basic", "compatible", "standard", "suiteb-gcm-128", "suiteb-gcm-256", "prime-128", "prime-256"), "Types of default IKE proposal-set"),
			C("local-id", "Define local identification",
				V("ipv4_addr", TAddr4, "IPv4 address").choice("id"),
				V("ipv6-addr", TAddr, "IPv6 address").choice("id"),
				V("fqdn", Text("<fqdn>", 1, 255), "Fully qualified domain name").choice("id"),
				V("key-id", Text("<key-id>", 1, 255), "Key ID").choice("id"),
				C("distinguished-name", "Use the distinguished name of the local certificate",
					V("container", Text("<string>", 1, 255), "Container string"),
					V("wildcard", Text("<string>", 1, 255), "Wildcard string"),
				).choice("id"),
			).flat(),
			C("remote-id", "Define remote identification",
				F("any-remote-id", "Accept any remote identity"),
				LL("ipv4_addr", TAddr4, "IPv4 addresses"),
				LL("ipv6-addr", TAddr, "IPv6 addresses"),
				LL("fqdn", Text("<fqdn>", 1, 255), "Fully qualified domain names"),
				LL("key-id", Text("<key-id>", 1, 255), "Key IDs"),
				C("distinguished-name", "Distinguished name",
					V("container", Text("<string>", 1, 255), "Container string"),
					V("wildcard", Text("<string>", 1, 255), "Wildcard string"),
				),
			),
			V("local-certificate", Text("<certificate-id>", 1, 32), "Local certificate identifier"),
			key("pre-shared-key", "Define a preshared key").flat(),
			V("peer-certificate-type", OneOf("pkcs7", "x509-signature"), "Preferred type of certificate from peer").def("x509-signature").unused("kmd takes X.509 signature certificates only"),
			LL("certificate-policy-oids", Text("<oid>", 1, 63), "Certificate policy object identifiers").max(5),
			respondBadSPI(),
		).pb("policies"),
	)
}

func ipsec() *Node {
	return C("ipsec", "IPsec configuration",
		L("proposal", Name(32), "Define an IPsec proposal",
			V("description", Text("<description>", 1, 80), "Text description of IPsec proposal"),
			V("protocol", OneOf("ah", "esp", "bundle"), "Define an IPsec protocol for the proposal").def("esp"),
			V("authentication-algorithm", ipsecAuth, "Define authentication algorithm").def("hmac-sha1-96"),
			V("encryption-algorithm", ipsecEnc, "Define encryption algorithm").def("3des-cbc"),
			V("lifetime-seconds", Range(180, 86400), "Lifetime, in seconds").def("28800"),
			V("lifetime-kilobytes", Range(64, 4294967294), "Lifetime, in kilobytes"),
		).pb("proposals"),
		L("policy", Name(32), "Define an IPsec policy",
			V("description", Text("<description>", 1, 80), "Text description of IPsec policy"),
			C("perfect-forward-secrecy", "Define perfect forward secrecy",
				V("keys", dhGroups, "Define Diffie-Hellman group").def("group1"),
			).inline("perfect_forward_secrecy_").fixed("perfect_forward_secrecy_keys=group1"), // keys' default when only the statement is there
			LL("proposals", Name(32), "Name of the proposal").ref("services ipsec-vpn ipsec proposal"),
			V("proposal-set", OneOf("basic", "compatible", "standard", "suiteb-gcm-128", "suiteb-gcm-256"), "Types of default IPsec proposal-set"),
		).pb("policies"),
	)
}

func ipsecVPN() *Node {
	return C("ipsec-vpn", "IPsec VPN service",
		L("rule", Name(63), "Define an IPsec VPN rule",
			V("match-direction", OneOf("input", "output"), "Match direction"),
			term(),
		).pb("rules"),
		L("rule-set", Name(63), "Define a set of IPsec VPN rules",
			L("rule", Name(63), "Rule to be included in this rule set").pb("rules").ref("services ipsec-vpn rule"),
		).pb("rule_sets"),
		ike(),
		ipsec(),
		V("establish-tunnels", OneOf("immediately", "on-traffic", "responder-only"), "Define the criteria to establish tunnels").def("on-traffic"),
		F("disable-natt", "Disable NAT traversal for all service sets"),
		F("no-ipsec-tunnel-in-traceroute", "Do not show the IPsec tunnel as a hop in traceroute"),
		F("clear-ike-sas-on-pic-restart", "Clear IKE SAs when the PIC restarts"),
		F("clear-ipsec-sas-on-pic-restart", "Clear IPsec SAs when the PIC restarts"),
		traceoptions(kmdFlags, "Trace options for the IPsec key management daemon"),
	).pb("ipsec_vpn")
}

func access() *Node {
	return C("access", "Network access configuration",
		L("profile", Name(63), "Access profile",
			L("client", TStar, "Client profile ('*' matches every dynamic peer)",
				C("ike", "IKE configuration for dynamic peers",
					L("allowed-proxy-pair", nil, "Allowed local and remote proxy pair").keyWords("local", "remote").flat().pb("allowed_proxy_pairs").keyPB("-"),
					key("pre-shared-key", "Define a preshared key").flat(),
					V("ike-policy", Name(32), "IKE policy").ref("services ipsec-vpn ike policy"),
					V("ipsec-policy", Name(32), "IPsec policy").ref("services ipsec-vpn ipsec policy"),
					V("interface-id", Name(32), "Interface ID (selects the service interface pool)"),
					F("initiate-dead-peer-detection", "Initiate dead peer detection"),
					dpd(),
					respondBadSPI(),
					C("reverse-route", "Reverse route options",
						C("preference", "Route preference",
							V("metric-value", Range(0, 4294967295), "Metric value").pb("metric"),
						).inline(""),
					).inline("reverse_route_"),
				).pb("client_ike"),
			).inline("").keyPB("-"),
		).pb("access_profiles"),
	).inline("")
}

func pki() *Node {
	caName := &Type{Kind: String, Label: "<name>", MinLen: 1, MaxLen: 32, Forbid: "/%. \t\"{};[]"}
	return C("security", "Security configuration",
		C("pki", "PKI service configuration",
			L("ca-profile", caName, "Name of certificate authority profile",
				V("ca-identity", Text("<ca-identity>", 1, 255), "Name of certificate authority"),
				C("enrollment", "Enrollment parameters for certificate authority",
					V("url", Text("<url>", 1, 500), "Enrollment URL of certificate authority"),
					V("retry", Range(0, 1080), "Number of enrollment retry attempts").def("1000"),
					V("retry-interval", Range(0, 3600), "Interval between enrollment retries (seconds)").def("600"),
				).inline("enrollment_"),
				C("revocation-check", "Method for checking certificate revocations",
					F("use-crl", "Use CRL for revocation check").enum("revocation_check", "REVOCATION_CHECK_USE_CRL").choice("method"),
					F("use-ocsp", "Use OCSP for revocation check").enum("revocation_check", "REVOCATION_CHECK_USE_OCSP").choice("method"),
					F("disable", "Disable revocation check").enum("revocation_check", "REVOCATION_CHECK_DISABLE").choice("method"),
					C("crl", "Certificate revocation list configuration",
						V("url", Text("<url>", 1, 500), "URL of CRL distribution point"),
						V("password", Text("<password>", 1, 128), "Password for authentication with the server").secret(),
						V("refresh-interval", Range(0, 8784), "CRL refresh interval (hours)").pb("refresh_interval_hours"),
						C("disable", "Disable CRL options",
							F("on-download-failure", "Check revocation status with the cached CRL"),
						).inline("disable_"),
					).inline("crl_"),
					C("ocsp", "Online Certificate Status Protocol configuration",
						LL("url", Text("<url>", 1, 500), "OCSP responder URLs").pb("urls"),
					).inline("ocsp_"),
				).inline(""),
				V("source-address", TAddr, "Source address for PKI traffic"),
				V("routing-instance", Name(128), "Routing instance for PKI traffic").ref("routing-instances"),
				C("administrator", "Administrator information",
					V("email-address", Text("<email>", 1, 255), "Administrator e-mail address").pb("email"),
				).inline("administrator_"),
			).pb("ca_profiles"),
			L("trusted-ca-group", caName, "Trusted CA group",
				LL("ca-profiles", caName, "Names of the trusted CA profiles").max(20).ref("security pki ca-profile"),
			).pb("trusted_ca_groups"),
			C("auto-re-enrollment", "Automatic re-enrollment of certificates",
				reenroll("scep"), reenroll("cmpv2"), reenroll("acme"),
			).inline(""),
			traceoptions(pkidFlags, "PKI trace options"),
		).pb("pki"),
	).inline("")
}

func reenroll(proto string) *Node {
	return C(proto, "Re-enrollment with "+proto,
		L("certificate-id", Name(32), "Certificate identifier (the key pair name)",
			V("ca-profile-name", Name(32), "Name of the CA profile").ref("security pki ca-profile"),
			V("re-enroll-trigger-time-percentage", Range(1, 99), "Re-enrollment trigger time (percentage of validity)"),
			F("re-generate-keypair", "Generate a new key pair for re-enrollment"),
			V("challenge-password", Text("<password>", 1, 255), "Challenge password").secret(),
			V("scep-encryption-algorithm", OneOf("des", "des3"), "SCEP encryption algorithm").def("des3"),
			V("scep-digest-algorithm", OneOf("md5", "sha1"), "SCEP digest algorithm").def("sha1"),
		).pb("auto_re_enrollment").keyPB("certificate_id").fixed("protocol="+proto),
	).inline("")
}

func routingInstances() *Node {
	return C("routing-instances", "Routing instance configuration",
		L("instance", Name(128), "Routing instance name",
			V("instance-type", OneOf("vrf", "virtual-router", "forwarding", "no-forwarding"), "Type of routing instance"),
			L("interface", TIFL, "Interface name for this routing instance").pb("interfaces"),
			V("route-distinguisher", Text("<rd>", 1, 64), "Route distinguisher for this instance"),
			LL("vrf-import", Name(128), "Import policy for VRF instance RIBs"),
			LL("vrf-export", Name(128), "Export policy for VRF instance RIBs"),
			V("vrf-target", Text("<target>", 1, 64), "VRF target community"),
			routingOptions(),
		).keyless().pb("routing_instances"),
	).inline("")
}

func system() *Node {
	return C("system", "System parameters",
		V("host-name", Text("<host-name>", 1, 255), "Hostname for this router"),
		C("processes", "Process control",
			L("process", OneOf("cfgd", "fwdd", "sitesecd"), "Daemon",
				traceoptions(procFlags, "Trace options for this daemon"),
			).keyless().pb("processes"),
		).inline(""),
	)
}

// protocols holds the routing protocols Juniper's examples configure for
// reachability. sitesec runs none of them: the host's routing does that
// job, so they are accepted and commit check says they are not acted on.
func protocols() *Node {
	ospfIf := L("interface", Text("<interface-name>", 1, 64), "Interface in the area",
		F("passive", "Do not run OSPF, but advertise it"),
		V("metric", Range(1, 65535), "Interface metric"),
		V("interface-type", OneOf("p2p", "p2mp", "nbma"), "Type of interface"),
		V("hello-interval", Range(1, 255), "Hello interval (seconds)"),
		V("dead-interval", Range(1, 65535), "Dead interval (seconds)"),
	)
	area := L("area", Text("<area-id>", 1, 15), "Configure an OSPF area", ospfIf)
	return C("protocols", "Routing protocol configuration",
		C("ospf", "OSPF configuration", area),
		C("ospf3", "OSPFv3 configuration", L("area", Text("<area-id>", 1, 15), "Configure an OSPF area",
			L("interface", Text("<interface-name>", 1, 64), "Interface in the area",
				F("passive", "Do not run OSPF, but advertise it"),
				V("metric", Range(1, 65535), "Interface metric"),
			))),
	).inert("sitesec runs no routing protocol; the host's routing reaches the networks")
}

// Root is the top of the configuration hierarchy.
var Root = C("", "",
	V("version", Text("<version>", 1, 64), "Software version information").pb("-"),
	system(),
	interfaces(),
	routingOptions(),
	protocols(),
	routingInstances(),
	C("services", "Service PIC applications settings",
		serviceSet(),
		ipsecVPN(),
	).inline(""),
	access(),
	pki(),
)

// Lookup returns the schema node at path (keywords only, no keys), or nil.
func Lookup(path ...string) *Node {
	n := Root
	for _, p := range path {
		c := n.Child(p)
		if c == nil {
			if k := n.KeylessList(); k != nil && p == k.Name {
				c = k
			} else {
				return nil
			}
		}
		n = c
	}
	return n
}
