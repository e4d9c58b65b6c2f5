// Package message is the RFC 7296 IKEv2 wire codec: the header, every
// payload type, the payload chain, and the encrypted (SK, section 3.14) and
// fragmented (SKF, RFC 7383 section 2.5) envelopes. It is built on
// golang.org/x/crypto/cryptobyte in the style of crypto/tls
// handshake_messages.go; parsing fails closed and keeps the raw bytes the
// AUTH payload signs (RFC 7296 section 2.15).
package message

import "fmt"

// ExchangeType is RFC 7296 section 3.1 "Exchange Type".
type ExchangeType uint8

// Exchange types.
const (
	IKESAInit     ExchangeType = 34
	IKEAuth       ExchangeType = 35
	CreateChildSA ExchangeType = 36
	Informational ExchangeType = 37
)

func (e ExchangeType) String() string {
	switch e {
	case IKESAInit:
		return "IKE_SA_INIT"
	case IKEAuth:
		return "IKE_AUTH"
	case CreateChildSA:
		return "CREATE_CHILD_SA"
	case Informational:
		return "INFORMATIONAL"
	}
	return fmt.Sprintf("EXCHANGE(%d)", uint8(e))
}

// Flags of the IKE header (RFC 7296 section 3.1).
const (
	FlagInitiator uint8 = 0x08
	FlagVersion   uint8 = 0x10
	FlagResponse  uint8 = 0x20
)

// Version is IKEv2: major 2, minor 0.
const Version uint8 = 0x20

// HeaderLen is the fixed IKE header size.
const HeaderLen = 28

// PayloadType is RFC 7296 section 3.2 "Next Payload".
type PayloadType uint8

// Payload types (RFC 7296 section 3.2, RFC 7383 section 2.5).
const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCERT     PayloadType = 37
	PayloadCERTREQ  PayloadType = 38
	PayloadAUTH     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendorID PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadSKF      PayloadType = 53
)

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCERT: "CERT", PayloadCERTREQ: "CERTREQ", PayloadAUTH: "AUTH", PayloadNonce: "Ni/Nr",
	PayloadNotify: "N", PayloadDelete: "D", PayloadVendorID: "V", PayloadTSi: "TSi", PayloadTSr: "TSr",
	PayloadSK: "SK", PayloadCP: "CP", PayloadEAP: "EAP", PayloadSKF: "SKF",
}

func (p PayloadType) String() string {
	if s, ok := payloadNames[p]; ok {
		return s
	}
	return fmt.Sprintf("PAYLOAD(%d)", uint8(p))
}

// ProtocolID is RFC 7296 section 3.3.1 "Protocol ID".
type ProtocolID uint8

// Protocol IDs.
const (
	ProtocolNone ProtocolID = 0
	ProtocolIKE  ProtocolID = 1
	ProtocolAH   ProtocolID = 2
	ProtocolESP  ProtocolID = 3
)

// TransformType is RFC 7296 section 3.3.2 "Transform Type".
type TransformType uint8

// Transform types.
const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformDH    TransformType = 4
	TransformESN   TransformType = 5
)

// Transform IDs used by sitesec (IANA "IKEv2 Parameters").
const (
	EncrAESCBC           uint16 = 12
	EncrAESGCM16         uint16 = 20
	EncrChaCha20Poly1305 uint16 = 28
	Encr3DES             uint16 = 3

	PRFHMACSHA1    uint16 = 2
	PRFHMACSHA2256 uint16 = 5
	PRFHMACSHA2384 uint16 = 6
	PRFHMACSHA2512 uint16 = 7

	IntegNone          uint16 = 0
	IntegHMACSHA196    uint16 = 2
	IntegHMACSHA256128 uint16 = 12
	IntegHMACSHA384192 uint16 = 13
	IntegHMACSHA512256 uint16 = 14

	ESNNone uint16 = 0
	ESNUsed uint16 = 1
)

// AttributeKeyLength is the only transform attribute RFC 7296 section
// 3.3.5 defines (TV format).
const AttributeKeyLength uint16 = 14

// IDType is RFC 7296 section 3.5 "ID Type".
type IDType uint8

// Identification types.
const (
	IDIPv4Addr  IDType = 1
	IDFQDN      IDType = 2
	IDRFC822    IDType = 3
	IDIPv6Addr  IDType = 5
	IDDERASN1DN IDType = 9
	IDDERASN1GN IDType = 10
	IDKeyID     IDType = 11
)

// AuthMethod is RFC 7296 section 3.8 "Auth Method".
type AuthMethod uint8

// Authentication methods.
const (
	AuthRSASignature     AuthMethod = 1
	AuthSharedKeyMIC     AuthMethod = 2
	AuthDSSSignature     AuthMethod = 3
	AuthECDSA256         AuthMethod = 9
	AuthECDSA384         AuthMethod = 10
	AuthECDSA521         AuthMethod = 11
	AuthDigitalSignature AuthMethod = 14 // RFC 7427
)

// NotifyType is RFC 7296 section 3.10.1 "Notify Message Type".
type NotifyType uint16

// Error notifications (below 16384) and status notifications.
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44

	NotifyInitialContact          NotifyType = 16384
	NotifySetWindowSize           NotifyType = 16385
	NotifyAdditionalTSPossible    NotifyType = 16386
	NotifyIPCompSupported         NotifyType = 16387
	NotifyNATDetectionSourceIP    NotifyType = 16388
	NotifyNATDetectionDestIP      NotifyType = 16389
	NotifyCookie                  NotifyType = 16390
	NotifyUseTransportMode        NotifyType = 16391
	NotifyRekeySA                 NotifyType = 16393
	NotifyESPTFCPaddingNotSupp    NotifyType = 16394
	NotifyNonFirstFragmentsAlso   NotifyType = 16395
	NotifyMobikeSupported         NotifyType = 16396
	NotifyFragmentationSupported  NotifyType = 16430
	NotifySignatureHashAlgorithms NotifyType = 16431
)

// IsError reports whether n is an error type (RFC 7296 section 3.10.1).
func (n NotifyType) IsError() bool { return n < 16384 }

// TSType is RFC 7296 section 3.13.1 "TS Type".
type TSType uint8

// Traffic selector types.
const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

// ConfigType is RFC 7296 section 3.15 "CFG Type".
type ConfigType uint8

// Configuration payload types.
const (
	CFGRequest ConfigType = 1
	CFGReply   ConfigType = 2
	CFGSet     ConfigType = 3
	CFGAck     ConfigType = 4
)

// CertEncoding is RFC 7296 section 3.6 "Cert Encoding".
type CertEncoding uint8

// Certificate encodings.
const (
	CertX509Signature CertEncoding = 4
	CertHashURLX509   CertEncoding = 12
)
