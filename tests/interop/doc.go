// Package interop runs a full sitesec router (cfgd, kmd, pkid, fwdd under
// sitesecd) against a real strongSwan charon with kernel-libipsec, each in
// its own network namespace, and checks IKEv2 (RFC 7296) and ESP in UDP
// (RFC 3948) end to end: SAs up, ping and TCP across, CHILD and IKE rekey
// under traffic, delete from either side and DPD. See README.md.
//
//	sw-ID (charon)                         ss-ID (sitesec)
//	in1 -- in0 10.1.0.1/24   eth0 ====== ge-0-0-0   ge-0-0-1 10.2.0.1/24 -- lan1
//	                    192.168.77.1  192.168.77.2
//
// The inner networks are veth pairs kept inside their namespace (the
// kernel here has no dummy interfaces, INTEROP.md).
package interop
