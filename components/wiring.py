"""The typed values components hand each other through the composition (platform_stack.py):
a Secret key to read, a group of pods to allow traffic to, a metrics endpoint to scrape,
an image whose client tools another pod reuses.

A producer fills them from its own resources and names; a consumer takes them as they
are and never rebuilds a neighbour's name, so Pulumi sees the dependency (a Secret name
given as the Secret's Output makes every reader depend on the Secret) and a rename in one
component cannot silently break another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

Obj = dict[str, Any]


@dataclass(frozen=True)
class SecretKeyRef:
    """One key of a Kubernetes Secret; ``name`` is the Secret's ``metadata.name`` Output."""

    name: pulumi.Input[str]
    key: str

    def env(self, variable: str) -> Obj:
        """An env var read from this key, so the value never shows in the pod spec."""
        return {"name": variable, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


@dataclass(frozen=True)
class Pods:
    """A group of one component's pods, selected by labels in the stack's namespace."""

    name: str  # names its NetworkPolicy: <release>-<name>-netpol
    match_labels: Mapping[str, str]

    def selector(self) -> Obj:
        return {"matchLabels": dict(self.match_labels)}

    def peers(self) -> list[Obj]:
        return [{"podSelector": self.selector()}]


@dataclass(frozen=True)
class MetricsEndpoint:
    """One metrics endpoint, as a Service port Prometheus scrapes."""

    system: str  # "patroni", "redis", "kafka", "backend"
    service: str  # the Service whose endpoints are the targets (also Prometheus' job label)
    selector: Mapping[str, str]  # labels that select that Service
    port_name: str  # the Service port's name
    port: int  # the container port behind it
    path: str = "/metrics"


@dataclass(frozen=True)
class ClientImage:
    """An image another pod runs for its client tools (pg_dump, redis-cli), as the user
    that owns the data it works on."""

    reference: str
    pull_policy: str
    uid: int
