"""TLS for the stand-in's gRPC port: one self-signed certificate per process, trusted through gRPC's roots file.

beaker-py opens its channel with `grpc.secure_channel(rpc_address, grpc.ssl_channel_credentials())`: TLS with the
default roots, no plaintext switch in its config. gRPC's supported way to choose those roots is the environment
variable GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, read when a process opens its first secure channel and kept for the
life of the process. So the certificate is made once per process, the roots file is the system bundle plus it,
and the variable is set before any channel opens (a subprocess inherits it). A process whose first secure channel
was opened earlier with other roots cannot trust the stand-in: `check_trusted` finds that out in seconds rather
than letting beaker-py retry an unavailable server forever.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOTS_VARIABLE = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"


@dataclass(frozen=True)
class TlsMaterial:
    key_pem: bytes
    cert_pem: bytes
    roots_file: Path


def _system_roots() -> bytes:
    for variable in (ROOTS_VARIABLE, "SSL_CERT_FILE"):
        path = os.environ.get(variable)
        if path and Path(path).is_file():
            return Path(path).read_bytes()
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


@functools.cache
def material() -> TlsMaterial:
    """The process's certificate for 127.0.0.1 and localhost; sets gRPC's roots file to trust it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "beaker stand-in on loopback")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    folder = Path(tempfile.mkdtemp(prefix="beakerservice-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    roots = folder / "roots.pem"
    system = _system_roots()
    roots.write_bytes(system + (b"" if not system or system.endswith(b"\n") else b"\n") + cert_pem)
    os.environ[ROOTS_VARIABLE] = str(roots)
    return TlsMaterial(key_pem=key_pem, cert_pem=cert_pem, roots_file=roots)


class UntrustedError(RuntimeError):
    """This process's gRPC roots were fixed before the stand-in's certificate existed."""
