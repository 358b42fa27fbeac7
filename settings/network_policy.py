"""Settings of the namespace's NetworkPolicies: deny by default, allow the platform's own
flows (components/network_policy.py lists them), and the few addresses outside the
cluster's pods that only the operator knows (the API server, extra egress)."""

from __future__ import annotations

import ipaddress

from pydantic import Field

from settings.base import ConfigModel, DnsLabel, Problem


class NetworkPolicySettings(ConfigModel):
    enabled: bool = Field(
        default=True,
        description="deny all traffic in the namespace by default and allow only the platform's own flows (NetworkPolicies)",
    )
    api_server_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description=(
            "CIDRs of the Kubernetes API server endpoints, which Patroni (its DCS) may reach on TCP 443 and 6443; "
            "the default allows any address on those ports only: narrow it to your control plane's addresses"
        ),
    )
    dns_namespace: DnsLabel = Field(default="kube-system", description="namespace of the cluster DNS pods every pod may query")
    dns_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"k8s-app": "kube-dns"},
        description="labels of the cluster DNS pods (CoreDNS keeps k8s-app: kube-dns); every pod may reach them on 53 UDP/TCP",
    )
    backend_egress_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs outside the cluster the backend may reach on any port (external APIs); empty: none",
    )
    backup_storage_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description=(
            "CIDRs of the S3-compatible store the backup CronJobs upload to (backup.destination s3), on the port of "
            "backup.s3.endpoint (443 by default); narrow it to the store's addresses"
        ),
    )

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if not self.enabled:
            return []
        found: list[Problem] = []
        lists = {
            "apiServerCidrs": self.api_server_cidrs,
            "backendEgressCidrs": self.backend_egress_cidrs,
            "backupStorageCidrs": self.backup_storage_cidrs,
        }
        for field, cidrs in lists.items():
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(cidr, strict=True)
                except ValueError:
                    found.append(
                        Problem(
                            f"{key}.{field}",
                            f"{cidr!r} is not a network in CIDR form; write it like 10.0.0.0/16 or 192.0.2.10/32 "
                            "(no host bits set below the prefix length)",
                        )
                    )
        if not self.api_server_cidrs:
            found.append(
                Problem(
                    f"{key}.apiServerCidrs",
                    "is empty, so Patroni could not reach the Kubernetes API (its DCS) and no member would ever "
                    "lead; list the API server's addresses (kubectl get endpoints kubernetes -n default), or keep "
                    'the default ["0.0.0.0/0"]',
                )
            )
        if not self.dns_pod_labels:
            found.append(
                Problem(
                    f"{key}.dnsPodLabels",
                    "is empty, which would admit DNS traffic to every pod of the DNS namespace; give the DNS pods' "
                    "labels (CoreDNS: {k8s-app: kube-dns})",
                )
            )
        return found
