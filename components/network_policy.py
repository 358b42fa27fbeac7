"""NamespaceIsolation and PlatformNetworkPolicies: the namespace denies every connection
by default, and allows exactly the flows the platform makes.

The flows are one table (platform_flows.py, built by the composition from the
components' outputs): who connects to whom, on which ports, and why. From it every pod
group gets one NetworkPolicy holding both what it accepts (ingress) and what it initiates
(egress), so ``kubectl describe netpol ai-infra-patroni-netpol`` shows everything Patroni
may do. Two namespace-wide policies complete the set:

- ``<release>-default-deny`` selects every pod for Ingress and Egress with no rule, so a
  pod no flow names (a new workload, a debug pod) can reach nothing and be reached by
  nothing until a flow is added to the table;
- ``<release>-dns-egress`` lets every pod query the cluster DNS (53 UDP and TCP).

Those two are NamespaceIsolation, which the composition creates before any workload and
makes every workload wait for: a pod never runs in the namespace unprotected, not even
when a first `pulumi up` fails before the per-group policies exist.

Policies see traffic after a Service's address is translated to a pod's, so every port
below is a container port (nginx 80, backend 8082), not a Service port. Kubelet probes
come from the node and are always allowed; ``kubectl port-forward`` and ``exec`` go
through the kubelet, not the pod network, and are not filtered either. A sidecar talking
to its own pod over 127.0.0.1 (redis_exporter) never leaves the pod.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components import k8s as shapes
from components import kube_objects as kube
from components.wiring import Pods
from settings.network_policy import NetworkPolicySettings

# The namespace label every namespace carries (Kubernetes >= 1.21 sets it itself).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DNS_PORT = 53


@dataclass(frozen=True)
class Port:
    port: int
    protocol: str = "TCP"

    def spec(self) -> shapes.Obj:
        return {"port": self.port, "protocol": self.protocol}

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Outside:
    """Addresses that are not pods of this namespace: another namespace's pods, CIDRs.
    No peers at all means any address."""

    name: str
    peer_specs: tuple[shapes.Obj, ...] = ()

    def peers(self) -> list[shapes.Obj]:
        return [dict(peer) for peer in self.peer_specs]


@dataclass(frozen=True)
class Flow:
    """``source`` opens connections to ``destination`` on ``ports``. Allowed on both ends:
    the source's egress and the destination's ingress (for a group of this stack)."""

    source: Pods | Outside
    destination: Pods | Outside
    ports: tuple[Port, ...]  # empty: every port
    purpose: str

    def __post_init__(self) -> None:
        if isinstance(self.source, Outside) and isinstance(self.destination, Outside):
            raise ValueError(f"flow {self.purpose!r} has no pod of this stack on either end")


@dataclass(frozen=True)
class NamespaceIsolationArgs:
    release: str
    namespace: str
    settings: NetworkPolicySettings  # where the cluster DNS runs


class NamespaceIsolation(pulumi.ComponentResource):
    """Default deny for every pod of the namespace, and cluster DNS for all of them."""

    policies: list[kube.NetworkPolicy]

    def __init__(self, name: str, args: NamespaceIsolationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:NamespaceIsolation", name, {}, opts)
        self.policies = _policies(name, baseline_objects(args.release, args.namespace, args.settings), self)
        self.register_outputs({"policyNames": [policy.metadata["name"] for policy in self.policies]})


@dataclass(frozen=True)
class PlatformNetworkPoliciesArgs:
    release: str
    namespace: str
    settings: NetworkPolicySettings  # where the cluster DNS runs
    groups: list[Pods]  # every group of pods the stack deploys: one policy each
    flows: list[Flow]  # every connection they make or accept


class PlatformNetworkPolicies(pulumi.ComponentResource):
    """One NetworkPolicy per group of pods, allowing exactly the flows of the table."""

    policies: list[kube.NetworkPolicy]
    flows: list[Flow]

    def __init__(self, name: str, args: PlatformNetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-infra:index:PlatformNetworkPolicies", name, {}, opts)
        self.flows = list(args.flows)
        self.policies = _policies(name, group_objects(args), self)
        self.register_outputs({"policyNames": [policy.metadata["name"] for policy in self.policies]})


def policy_objects(args: PlatformNetworkPoliciesArgs) -> list[shapes.Obj]:
    """Every NetworkPolicy of the stack (metadata and spec): default deny, DNS, then one
    per group of pods."""
    return [*baseline_objects(args.release, args.namespace, args.settings), *group_objects(args)]


def baseline_objects(release: str, namespace: str, policy: NetworkPolicySettings) -> list[shapes.Obj]:
    """The namespace-wide default deny and DNS egress."""
    labels = shapes.common_labels(release, "network-policy", "security")
    dns_ports = [Port(DNS_PORT, "UDP").spec(), Port(DNS_PORT, "TCP").spec()]
    return [
        {
            "metadata": shapes.metadata(f"{release}-default-deny", namespace, labels),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "metadata": shapes.metadata(f"{release}-dns-egress", namespace, labels),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: policy.dns_namespace}},
                                "podSelector": {"matchLabels": dict(policy.dns_pod_labels)},
                            }
                        ],
                        "ports": dns_ports,
                    }
                ],
            },
        },
    ]


def group_objects(args: PlatformNetworkPoliciesArgs) -> list[shapes.Obj]:
    """One policy per group of pods of this stack, from the flow table."""
    release, namespace, flows = args.release, args.namespace, args.flows
    labels = shapes.common_labels(release, "network-policy", "security")
    objects: list[shapes.Obj] = []
    for group in args.groups:
        ingress = [flow for flow in flows if flow.destination == group]
        egress = [flow for flow in flows if flow.source == group]
        objects.append(
            {
                "metadata": shapes.metadata(
                    f"{release}-{group.name}-netpol",
                    namespace,
                    labels,
                    {"ai-infra-matrix/flows": _describe(group, ingress, egress)},
                ),
                "spec": _group_spec(group, ingress, egress),
            }
        )
    return objects


# --- private builders --------------------------------------------------------------------


def _policies(name: str, specs: list[shapes.Obj], parent: pulumi.Resource) -> list[kube.NetworkPolicy]:
    return [
        kube.NetworkPolicy(
            f"{name}-{spec['metadata']['name']}",
            metadata=spec["metadata"],
            spec=spec["spec"],
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for spec in specs
    ]


def _group_spec(group: Pods, ingress: Sequence[Flow], egress: Sequence[Flow]) -> shapes.Obj:
    # Both types always: a type without rules denies that direction. Empty rule lists
    # are left out (the provider drops them, which would show as a diff).
    spec: shapes.Obj = {"podSelector": group.selector(), "policyTypes": ["Ingress", "Egress"]}
    if ingress:
        spec["ingress"] = [_rule("from", flow.source, flow.ports) for flow in ingress]
    if egress:
        spec["egress"] = [_rule("to", flow.destination, flow.ports) for flow in egress]
    return spec


def ip_blocks(cidrs: Sequence[str]) -> tuple[shapes.Obj, ...]:
    """Peers for addresses outside the cluster's pods, by CIDR."""
    return tuple({"ipBlock": {"cidr": cidr}} for cidr in cidrs)


def _rule(direction: str, peer: Pods | Outside, ports: tuple[Port, ...]) -> shapes.Obj:
    rule: shapes.Obj = {}
    peers = peer.peers()
    if peers:  # no peers: any address
        rule[direction] = peers
    if ports:  # no ports: every port
        rule["ports"] = [port.spec() for port in ports]
    return rule


def _describe(group: Pods, ingress: Sequence[Flow], egress: Sequence[Flow]) -> str:
    lines = [f"from {flow.source.name} on {_ports(flow)}: {flow.purpose}" for flow in ingress]
    lines += [f"to {flow.destination.name} on {_ports(flow)}: {flow.purpose}" for flow in egress]
    lines.append("to DNS on 53/UDP, 53/TCP (dns-egress); nothing else")
    return "\n".join(lines)


def _ports(flow: Flow) -> str:
    return ", ".join(str(port) for port in flow.ports) or "any port"
