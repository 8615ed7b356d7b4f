"""A local CA and one server certificate for trying TLS (tests, demos, a LAN pilot).

    python deploy/make_certs.py [OUT_DIR=var/tls] [--host NAME_OR_IP ...]

Writes ca.pem, server.pem and server-key.pem (mode 0600) to OUT_DIR. The server certificate
serves clients and cluster routes (serverAuth + clientAuth) for localhost, 127.0.0.1, the
compose names nats-1..3 and every --host. The CA key is not kept: run again for new names.
Production: use your organisation's CA, one certificate per node. Never commit the keys.
"""

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ["localhost", "127.0.0.1", "nats-1", "nats-2", "nats-3"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "relief (test)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_certs(out_dir: Path, hosts: list[str] = (), days: int = 30) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("relief test CA")).issuer_name(_name("relief test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys([*DEFAULT_HOSTS, *hosts]))
    server = (x509.CertificateBuilder().subject_name(_name("nats")).issuer_name(ca.subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in names]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                    ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))

    paths = {"ca": out_dir / "ca.pem", "cert": out_dir / "server.pem", "key": out_dir / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].touch(mode=0o600)
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", default="var/tls")
    parser.add_argument("--host", action="append", default=[])
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    for path in make_certs(Path(args.out_dir), args.host, args.days).values():
        print(path)
