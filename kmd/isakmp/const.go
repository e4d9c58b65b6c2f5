package isakmp

// Version is the ISAKMP version octet of IKEv1 (RFC 2408 section 3.1:
// major 1, minor 0). IKEv2 sends 0x20 in the same place.
const Version = 0x10

// HeaderLen is the fixed ISAKMP header (RFC 2408 section 3.1).
const HeaderLen = 28

// Exchange types (RFC 2408 section 3.1, RFC 2409 section 5).
type ExchangeType uint8

const (
	ExchangeMain          ExchangeType = 2 // Identity Protection
	ExchangeAggressive    ExchangeType = 4
	ExchangeInformational ExchangeType = 5
	ExchangeQuick         ExchangeType = 32 // RFC 2409 section 5.5
)

func (e ExchangeType) String() string {
	switch e {
	case ExchangeMain:
		return "Main"
	case ExchangeAggressive:
		return "Aggressive"
	case ExchangeInformational:
		return "Informational"
	case ExchangeQuick:
		return "Quick"
	}
	return "Exchange(" + itoa(int(e)) + ")"
}

// Header flags (RFC 2408 section 3.1).
const (
	FlagEncryption = 0x01
	FlagCommit     = 0x02
	FlagAuthOnly   = 0x04
)

// Payload types (RFC 2408 section 3.1, RFC 3947 section 3).
type PayloadType uint8

const (
	PayloadNone      PayloadType = 0
	PayloadSA        PayloadType = 1
	PayloadProposal  PayloadType = 2
	PayloadTransform PayloadType = 3
	PayloadKE        PayloadType = 4
	PayloadID        PayloadType = 5
	PayloadCert      PayloadType = 6
	PayloadCertReq   PayloadType = 7
	PayloadHash      PayloadType = 8
	PayloadSig       PayloadType = 9
	PayloadNonce     PayloadType = 10
	PayloadNotify    PayloadType = 11
	PayloadDelete    PayloadType = 12
	PayloadVendorID  PayloadType = 13
	PayloadNATD      PayloadType = 20
	PayloadNATOA     PayloadType = 21
)

var payloadNames = map[PayloadType]string{
	PayloadSA: "SA", PayloadProposal: "P", PayloadTransform: "T", PayloadKE: "KE", PayloadID: "ID",
	PayloadCert: "CERT", PayloadCertReq: "CR", PayloadHash: "HASH", PayloadSig: "SIG", PayloadNonce: "No",
	PayloadNotify: "N", PayloadDelete: "D", PayloadVendorID: "V", PayloadNATD: "NAT-D", PayloadNATOA: "NAT-OA",
}

func (p PayloadType) String() string {
	if n, ok := payloadNames[p]; ok {
		return n
	}
	return "PAYLOAD(" + itoa(int(p)) + ")"
}

// DOI is the IPsec Domain of Interpretation (RFC 2407 section 4.2).
const DOIIPsec = 1

// SituationIdentityOnly (RFC 2407 section 4.2.1).
const SituationIdentityOnly = 1

// Protocol IDs (RFC 2407 section 4.4.1).
const (
	ProtoISAKMP = 1
	ProtoAH     = 2
	ProtoESP    = 3
)

// TransformKeyIKE is the only phase 1 transform ID (RFC 2407 section 4.4.2).
const TransformKeyIKE = 1

// ESP transform IDs (RFC 2407 section 4.4.4, IANA "IPsec ESP Transform
// Identifiers").
const (
	ESPDES      = 2
	ESP3DES     = 3
	ESPNull     = 11
	ESPAES      = 12
	ESPAESGCM16 = 20
)

// AH transform IDs (RFC 2407 section 4.4.3).
const (
	AHMD5    = 2
	AHSHA    = 3
	AHSHA256 = 5
	AHSHA384 = 6
	AHSHA512 = 7
)

// Phase 1 attribute classes (RFC 2409 appendix A).
const (
	AttrEncryption   = 1
	AttrHash         = 2
	AttrAuthMethod   = 3
	AttrGroup        = 4
	AttrLifeType     = 11
	AttrLifeDuration = 12
	AttrKeyLength    = 14
)

// Phase 1 values (RFC 2409 appendix A, IANA "IPSEC Encryption Algorithm").
const (
	EncrDES  = 1
	Encr3DES = 5
	EncrAES  = 7

	HashMD5    = 1
	HashSHA1   = 2
	HashSHA256 = 4
	HashSHA384 = 5
	HashSHA512 = 6

	AuthPSK      = 1
	AuthDSS      = 2
	AuthRSA      = 3
	AuthECDSA256 = 9 // RFC 4754 section 3
	AuthECDSA384 = 10
	AuthECDSA521 = 11

	// CertX509Signature is the certificate encoding of CERT and
	// CERTREQ payloads for X.509 signature certificates (RFC 2408
	// section 3.9).
	CertX509Signature = 4

	LifeSeconds   = 1
	LifeKilobytes = 2
)

// Phase 2 attribute classes (RFC 2407 section 4.5).
const (
	AttrSALifeType     = 1
	AttrSALifeDuration = 2
	AttrGroupDesc      = 3
	AttrEncapMode      = 4
	AttrAuthAlg        = 5
	AttrKeyLen         = 6
)

// Encapsulation modes (RFC 2407 section 4.5, RFC 3947 section 5.1).
const (
	EncapTunnel         = 1
	EncapTransport      = 2
	EncapUDPTunnel      = 3
	EncapUDPTransport   = 4
	EncapUDPTunnelDraft = 61443 // draft-ietf-ipsec-nat-t-ike-03 and older
)

// Phase 2 authentication algorithms (RFC 2407 section 4.5, RFC 4868
// section 2.4 for SHA-2).
const (
	AuthHMACMD5    = 1
	AuthHMACSHA    = 2
	AuthHMACSHA256 = 5
	AuthHMACSHA384 = 6
	AuthHMACSHA512 = 7
)

// Identification types (RFC 2407 section 4.6.2.1).
const (
	IDIPv4       = 1
	IDFQDN       = 2
	IDUserFQDN   = 3
	IDIPv4Subnet = 4
	IDIPv6       = 5
	IDIPv6Subnet = 6
	IDIPv4Range  = 7
	IDIPv6Range  = 8
	IDDERASN1DN  = 9
	IDKeyID      = 11
)

// Notify message types (RFC 2408 section 3.14.1, RFC 2407 section 4.6.3,
// RFC 3706 section 5).
const (
	NotifyInvalidPayloadType   = 1
	NotifyInvalidExchangeType  = 7
	NotifyInvalidFlags         = 8
	NotifyInvalidMessageID     = 9
	NotifyInvalidSPI           = 11
	NotifyNoProposalChosen     = 14
	NotifyPayloadMalformed     = 16
	NotifyInvalidKeyInfo       = 17
	NotifyInvalidIDInformation = 18
	NotifyAuthenticationFailed = 24
	NotifyInvalidHashInfo      = 23
	NotifyResponderLifetime    = 24576
	NotifyReplayStatus         = 24577
	NotifyInitialContact       = 24578
	NotifyRUThere              = 36136
	NotifyRUThereAck           = 36137
)

// Vendor IDs this implementation sends and recognises.
var (
	// VendorNATT is MD5("RFC 3947") (RFC 3947 section 3).
	VendorNATT = []byte{0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f}
	// VendorDPD announces RFC 3706 support (RFC 3706 section 5.1).
	VendorDPD = []byte{0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00}
)

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
