"""A small NetworkPolicy evaluator (networking.k8s.io/v1 semantics), so tests can ask of
rendered objects: would this connection be allowed?

A connection is allowed when the source's egress allows it AND the destination's
ingress allows it. For each side, only the policies of the pod's own namespace whose
``podSelector`` matches the pod and whose ``policyTypes`` include that direction count;
a pod no such policy selects is not isolated in that direction (everything allowed).
An isolated pod's direction is allowed when any rule of any of those policies matches
both the peer and the port. Peers: ``podSelector`` alone (pods of the policy's
namespace), ``namespaceSelector`` alone (every pod of the matching namespaces), both
(pods matching in matching namespaces), ``ipBlock`` (addresses in ``cidr`` and not in
``except``). A rule with no peers matches every peer, a rule with no ports every port.
Ports are numbers (with optional ``endPort``) or names resolved against the destination
pod's container ports. ``policyTypes`` left out means Ingress, plus Egress when the
policy has an ``egress`` section.

Where clusters differ, the evaluator takes the permissive reading so that a "denied"
verdict holds on any conformant plugin: ``ipBlock`` here also matches pod addresses
(Calico does; Cilium does not).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (``namespace`` set) or an address outside the
    cluster's pods (``namespace`` None)."""

    name: str
    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    # container port name -> (number, protocol), for named ports in policies
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def pod(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    *,
    ip: str,
    namespace_labels: Mapping[str, str] | None = None,
    named_ports: Mapping[str, tuple[int, str]] | None = None,
) -> Endpoint:
    ns_labels = {NAMESPACE_NAME_LABEL: namespace, **(namespace_labels or {})}
    return Endpoint(name, ip, namespace, dict(labels), ns_labels, dict(named_ports or {}))


def address(name: str, ip: str) -> Endpoint:
    return Endpoint(name, ip)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels; an empty selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for term in selector.get("matchExpressions") or []:
        key, operator, values = term["key"], term["operator"], term.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


def policy_types(policy: Obj) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


class Policies:
    """The NetworkPolicies of a set of rendered objects."""

    def __init__(self, objects: Iterable[Obj]):
        self.policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]

    def selecting(self, endpoint: Endpoint, direction: str) -> list[Obj]:
        """The policies that isolate ``endpoint`` in ``direction`` ("Ingress"/"Egress")."""
        if not endpoint.is_pod:
            return []
        return [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == endpoint.namespace
            and direction in policy_types(policy)
            and selector_matches(policy["spec"]["podSelector"], endpoint.labels)
        ]

    def allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self.egress_allows(source, destination, port, protocol) and self.ingress_allows(
            source, destination, port, protocol
        )

    def egress_allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        isolating = self.selecting(source, "Egress")
        if not isolating:
            return True
        return any(
            _peers_match(rule.get("to"), policy, destination) and _ports_match(rule.get("ports"), destination, port, protocol)
            for policy in isolating
            for rule in policy["spec"].get("egress") or []
        )

    def ingress_allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        isolating = self.selecting(destination, "Ingress")
        if not isolating:
            return True
        return any(
            _peers_match(rule.get("from"), policy, source) and _ports_match(rule.get("ports"), destination, port, protocol)
            for policy in isolating
            for rule in policy["spec"].get("ingress") or []
        )


# --- pods of rendered workloads ------------------------------------------------------------


def pod_templates(objects: Iterable[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(owner, pod template) for every workload that creates pods."""
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "ReplicaSet", "DaemonSet"):
            yield obj, spec["template"]
        elif obj["kind"] == "CronJob":
            yield obj, spec["jobTemplate"]["spec"]["template"]


def template_endpoint(owner: Obj, template: Obj, *, ip: str, namespace_labels: Mapping[str, str] | None = None) -> Endpoint:
    """A pod of ``owner`` as the evaluator sees it: its labels, namespace, named ports."""
    named: dict[str, tuple[int, str]] = {}
    for container in template["spec"].get("containers", []) + template["spec"].get("initContainers", []):
        for port in container.get("ports", []):
            if "name" in port:
                named[port["name"]] = (port["containerPort"], port.get("protocol", "TCP"))
    return pod(
        f"{owner['kind']}/{owner['metadata']['name']}",
        owner["metadata"]["namespace"],
        template["metadata"].get("labels", {}),
        ip=ip,
        namespace_labels=namespace_labels,
        named_ports=named,
    )


def workload_endpoints(objects: list[Obj]) -> list[Endpoint]:
    """One pod per workload, each with its own address in 10.244.0.0/16, and the labels
    of its rendered Namespace object."""
    namespace_labels = {
        obj["metadata"]["name"]: obj["metadata"].get("labels", {}) for obj in objects if obj["kind"] == "Namespace"
    }
    return [
        template_endpoint(
            owner,
            template,
            ip=f"10.244.{index // 250}.{index % 250 + 2}",
            namespace_labels=namespace_labels.get(owner["metadata"]["namespace"]),
        )
        for index, (owner, template) in enumerate(pod_templates(objects))
    ]


# --- private -------------------------------------------------------------------------------


def _peers_match(peers: list[Obj] | None, policy: Obj, endpoint: Endpoint) -> bool:
    if not peers:  # no from/to: every peer
        return True
    return any(_peer_matches(peer, policy, endpoint) for peer in peers)


def _peer_matches(peer: Obj, policy: Obj, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(endpoint.ip)
        inside = ip in ipaddress.ip_network(block["cidr"], strict=False)
        excluded = any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in block.get("except", []))
        return inside and not excluded
    if not endpoint.is_pod:  # selectors only ever match pods
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], endpoint.namespace_labels):
            return False
    elif endpoint.namespace != policy["metadata"]["namespace"]:
        return False
    return selector_matches(peer.get("podSelector"), endpoint.labels)


def _ports_match(ports: list[Obj] | None, destination: Endpoint, port: int, protocol: str) -> bool:
    if not ports:  # no ports: every port
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:  # a protocol without a port: every port of it
            return True
        if isinstance(wanted, str):
            named = destination.named_ports.get(wanted)
            if named is not None and named == (port, protocol):
                return True
            continue
        if wanted is not None and wanted <= port <= (entry.get("endPort") or wanted):
            return True
    return False
