#!/usr/bin/python3
# Generates scapy_vectors.json: ESP tunnel-mode packets sealed by scapy's
# independent implementation (scapy.layers.ipsec), which esp_test.go opens
# and reproduces byte for byte. Run: /usr/bin/python3 scapy_vectors.py > scapy_vectors.json
import json
from scapy.all import IP, ICMP, Raw, raw
from scapy.layers.ipsec import SecurityAssociation, ESP

cases = [
    # name, scapy crypt, junos enc, keylen(+salt), scapy auth, junos auth, authkeylen, ivlen
    ("aes-128-gcm", "AES-GCM", "aes-128-gcm", 20, "NULL", "", 0, 8),
    ("aes-256-gcm", "AES-GCM", "aes-256-gcm", 36, "NULL", "", 0, 8),
    ("chacha20-poly1305", "CHACHA20-POLY1305", "chacha20-poly1305", 36, "NULL", "", 0, 8),
    ("aes-128-cbc/hmac-sha1-96", "AES-CBC", "aes-128-cbc", 16, "HMAC-SHA1-96", "hmac-sha1-96", 20, 16),
    ("aes-256-cbc/hmac-sha-256-128", "AES-CBC", "aes-256-cbc", 32, "SHA2-256-128", "hmac-sha-256-128", 32, 16),
    ("3des-cbc/hmac-md5-96", "3DES", "3des-cbc", 24, "HMAC-MD5-96", "hmac-md5-96", 16, 8),
    ("null/hmac-sha1-96", "NULL", "", 0, "HMAC-SHA1-96", "hmac-sha1-96", 20, 0),
]
out = []
n = 0
for name, calg, enc, klen, aalg, auth, alen, ivlen in cases:
    # scapy 2.5 leaves the ESN high bits out of an ESP HMAC (AuthAlgo.sign
    # adds them for AH only), against RFC 4303 section 2.2.1, so ESN is
    # cross-checked with the AEAD transforms only.
    for esn in ((False, True) if alen == 0 else (False,)):
        for size in (0, 1, 61, 100):
            n += 1
            ekey = bytes((n * 7 + i) & 0xFF for i in range(klen))
            akey = bytes((n * 13 + i) & 0xFF for i in range(alen))
            spi = 0x1000 + n
            seq = (0x00000001_00000000 * (3 if esn else 0)) + 0xFFFFFF00 + n
            iv = bytes((n + i * 3) & 0xFF for i in range(ivlen))
            inner = IP(src="10.0.1.1", dst="10.0.2.2", id=n) / ICMP(id=7, seq=n) / Raw(bytes(range(size)))
            sa = SecurityAssociation(ESP, spi=spi, crypt_algo=calg, crypt_key=ekey if klen else None,
                                     auth_algo=aalg, auth_key=akey if alen else None,
                                     tunnel_header=IP(src="192.0.2.1", dst="192.0.2.2"),
                                     esn_en=esn, esn=(seq >> 32) if esn else 0)
            kw = {"seq_num": seq & 0xFFFFFFFF}
            if ivlen:
                kw["iv"] = iv
            p = sa.encrypt(inner, **kw)
            b = raw(p)
            ihl = (b[0] & 0xF) * 4
            out.append({
                "name": "%s esn=%s size=%d" % (name, esn, size),
                "encryption": enc, "authentication": auth,
                "encryption_key": ekey.hex(), "authentication_key": akey.hex(),
                "spi": spi, "seq": seq, "esn": esn, "iv": iv.hex(),
                "inner": raw(inner).hex(), "esp": b[ihl:].hex(),
            })
print(json.dumps(out, indent=1))
