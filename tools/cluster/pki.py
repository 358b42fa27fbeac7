"""The cluster's certificates and keys, made with openssl as kubeadm lays them out.

Two CAs: the cluster CA (API server serving, every client certificate, kubelet serving,
the ServiceAccount root CA pods see) and the front-proxy CA (the aggregation layer that
serves metrics.k8s.io). Keys are ECDSA P-256; the ServiceAccount signing key is RSA 2048.
Everything lives in ``.cluster/pki`` and is made once per cluster.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from tools.cluster.layout import CLUSTER_DOMAIN, CONTROL_PLANE_IP, KUBERNETES_SERVICE_IP, Node
from tools.cluster.util import run

DAYS = "3650"
CONTEXT = "ai-infra-local"  # the kubeconfig context (and cluster) name


@dataclass(frozen=True)
class Cert:
    name: str
    subject: str  # /CN=.../O=...
    usage: str  # serverAuth, clientAuth or both
    sans: tuple[str, ...] = ()
    ca: str = "ca"


def control_plane_certs() -> list[Cert]:
    apiserver_sans = (
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        f"DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}",
        "DNS:localhost",
        f"IP:{KUBERNETES_SERVICE_IP}",
        f"IP:{CONTROL_PLANE_IP}",
        "IP:127.0.0.1",
    )
    return [
        Cert("apiserver", "/CN=kube-apiserver", "serverAuth", apiserver_sans),
        Cert("apiserver-kubelet-client", "/CN=kube-apiserver-kubelet-client", "clientAuth"),
        Cert("front-proxy-client", "/CN=front-proxy-client", "clientAuth", ca="front-proxy-ca"),
        Cert("admin", "/O=system:masters/CN=kubernetes-admin", "clientAuth"),
        Cert("controller-manager", "/CN=system:kube-controller-manager", "clientAuth"),
        Cert("scheduler", "/CN=system:kube-scheduler", "clientAuth"),
        Cert("kube-proxy", "/CN=system:kube-proxy", "clientAuth"),
    ]


def node_certs(node: Node) -> list[Cert]:
    identity = f"/O=system:nodes/CN=system:node:{node.name}"
    return [
        Cert(f"kubelet-{node.name}", identity, "clientAuth"),
        Cert(f"kubelet-serving-{node.name}", identity, "serverAuth", (f"DNS:{node.name}", f"IP:{node.ip}")),
    ]


def ensure(pki: Path, nodes: list[Node]) -> None:
    """Make whatever of the CAs, keys and certificates is missing (idempotent)."""
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    for ca in ("ca", "front-proxy-ca"):
        if not (pki / f"{ca}.crt").exists():
            _key(pki / f"{ca}.key")
            run(["openssl", "req", "-x509", "-new", "-key", pki / f"{ca}.key", "-subj", f"/CN={ca}",
                 "-days", DAYS, "-sha256", "-out", pki / f"{ca}.crt",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign"])  # fmt: skip
    if not (pki / "sa.key").exists():
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pki / "sa.key"])
        run(["openssl", "pkey", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub"])
    for cert in control_plane_certs() + [c for node in nodes for c in node_certs(node)]:
        if not (pki / f"{cert.name}.crt").exists():
            _issue(pki, cert)


def _key(path: Path) -> None:
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    path.chmod(0o600)


def _issue(pki: Path, cert: Cert) -> None:
    key, csr, crt = (pki / f"{cert.name}.{ext}" for ext in ("key", "csr", "crt"))
    _key(key)
    run(["openssl", "req", "-new", "-key", key, "-subj", cert.subject, "-out", csr])
    extensions = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={cert.usage}",
    ]
    if cert.sans:
        extensions.append("subjectAltName=" + ",".join(cert.sans))
    ext_file = pki / f"{cert.name}.ext"
    ext_file.write_text("\n".join(extensions) + "\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", pki / f"{cert.ca}.crt", "-CAkey", pki / f"{cert.ca}.key",
         "-CAcreateserial", "-days", DAYS, "-sha256", "-extfile", ext_file, "-out", crt])  # fmt: skip
    csr.unlink()
    ext_file.unlink()


def kubeconfig(pki: Path, user: str, server: str, *, embed: bool = False) -> str:
    """A kubeconfig (JSON, which kubectl and client-go read as YAML) for the client cert ``user``.

    ``embed``: carry the certificates in the file (for users and Pulumi, which may be given
    the file's contents); otherwise point at them in ``pki`` (for the cluster's own daemons).
    """

    def ref(field: str, name: str) -> dict[str, str]:
        if embed:
            return {f"{field}-data": base64.b64encode((pki / name).read_bytes()).decode()}
        return {field: str(pki / name)}

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, **ref("certificate-authority", "ca.crt")}}],
        "users": [{"name": user, "user": {**ref("client-certificate", f"{user}.crt"), **ref("client-key", f"{user}.key")}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    return json.dumps(config, indent=2) + "\n"
