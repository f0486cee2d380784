"""DKIM for tests: a key generated here, its DNS record, and signing with dkimpy."""

from __future__ import annotations

import base64
from functools import lru_cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.dns_server import DnsServer


@lru_cache(maxsize=1)
def keypair() -> tuple[bytes, str]:
    """(private key PEM, public key for p=); one per test process, since RSA generation is slow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


def publish(dns: DnsServer, domain: str, *, selector: str = "sel", spf: str | None = "v=spf1 ip4:127.0.0.0/8 -all",
            dmarc: str | None = "v=DMARC1; p=reject") -> None:
    """The domain's DKIM key, SPF record and DMARC policy, as a real sender would publish them."""
    dns.add_txt(f"{selector}._domainkey.{domain}", f"v=DKIM1; k=rsa; p={keypair()[1]}")
    if spf is not None:
        dns.add_txt(domain, spf)
    if dmarc is not None:
        dns.add_txt(f"_dmarc.{domain}", dmarc)


def sign(raw: bytes, domain: str, *, selector: str = "sel") -> bytes:
    """`raw` with a DKIM-Signature by `domain` on top (relaxed/relaxed, as most senders sign)."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    sig = dkim.sign(raw, selector.encode(), domain.encode(), keypair()[0], canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return sig + raw
