"""Shared shapes of the stack config: the model base, Kubernetes quantities, images,
resources and persistence. Every component's settings are built from these."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

# The Pulumi project name: the namespace of every config key (ai-infra-matrix:kafka.replicaCount).
PROJECT = "ai-infra-matrix"


class ConfigModel(BaseModel):
    """Base of every config model: camelCase keys as in the deployment guide's values,
    unknown keys rejected (a typo must fail loudly, not be ignored), immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
        defer_build=True,
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config: the dotted key below the project namespace
    (``backend.autoscaling.minReplicas``) and what to do about it."""

    key: str
    message: str


class SettingsError(Exception):
    """The stack config is invalid; ``problems`` says where and how to fix it."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{PROJECT}:{problem.key}: {problem.message}" for problem in self.problems]


# --- Kubernetes quantities ----------------------------------------------------------

_QUANTITY = re.compile(r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?P<suffix>[A-Za-z]*|[eE][+-]?[0-9]+)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str) -> Decimal:
    """Value of a Kubernetes resource quantity (``500m`` -> 0.5, ``1Gi`` -> 1073741824).
    Raises ValueError with the accepted forms when ``text`` is not one."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity; use a number with an optional suffix such as 250m, 1, 512Mi, 2Gi or 1e3"
        )
    number, suffix = Decimal(match["number"]), match["suffix"]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return number * (Decimal(10) ** int(suffix[1:]))
        except (InvalidOperation, ValueError) as error:  # pragma: no cover - regex guards it
            raise ValueError(f"{text!r} has an invalid exponent") from error
    raise ValueError(f"{text!r} has an unknown suffix {suffix!r}; use one of m, k, M, G, T, Ki, Mi, Gi, Ti")


def canonical_quantity(text: str) -> str:
    """``text`` in the canonical form Kubernetes writes back (``2000m`` -> ``2``,
    ``1024Mi`` -> ``1Gi``, ``0.5`` -> ``500m``), so what the program registers is what the
    API server and the provider show, and a diff never flips between spellings."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    value, suffix = parse_quantity(text), match["suffix"]
    if suffix in _BINARY and value == value.to_integral_value() and value >= 1024:
        for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            if value % _BINARY[unit] == 0:
                return f"{int(value / _BINARY[unit])}{unit}"
    if suffix in _BINARY and value == value.to_integral_value():
        return str(int(value))
    # Decimal forms (and fractional binary ones): the largest power of 1000 that keeps the
    # number whole, rounding up to nano units as Kubernetes does.
    nanos = (value * 10**9).to_integral_value(rounding="ROUND_CEILING")
    if nanos == 0:
        return "0"
    exponent_suffix = suffix[:1] in ("e", "E")
    for power, unit in ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k"), (0, ""), (-3, "m"), (-6, "u"), (-9, "n")):
        scale = Decimal(10) ** (power + 9)
        if nanos % scale == 0:
            number = int(nanos / scale)
            if exponent_suffix and power:
                return f"{number}e{power}"
            return f"{number}{unit}"
    raise AssertionError("unreachable: every whole number of nanos has a unit")


def _check_quantity(text: str) -> str:
    if parse_quantity(text) < 0:
        raise ValueError(f"{text!r} is negative; resource quantities must be >= 0")
    return canonical_quantity(text)


def _number_as_text(value: object) -> object:
    # `cpu: 2` in YAML is a number; Kubernetes reads it as the quantity "2".
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, "g") if isinstance(value, float) else str(value)
    return value


Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_quantity)]

# RFC 1123 label, the rule for names Kubernetes derives DNS records from.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_dns_label(text: str) -> str:
    if len(text) > 63 or not _DNS_LABEL.match(text):
        raise ValueError(
            f"{text!r} is not a valid DNS label; use at most 63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return text


DnsLabel = Annotated[str, AfterValidator(_check_dns_label)]


def _check_dns_name(text: str) -> str:
    labels = text.split(".")
    if len(text) > 253 or not all(len(label) <= 63 and _DNS_LABEL.match(label) for label in labels):
        raise ValueError(f"{text!r} is not a DNS name; use dot-separated lowercase labels such as cluster.local")
    return text


DnsName = Annotated[str, AfterValidator(_check_dns_name)]


# --- Common sub-models ---------------------------------------------------------------


class ImageSettings(ConfigModel):
    repository: str = Field(min_length=1, description="image repository (registry/name)")
    tag: str = Field(default="", description="image tag; prod refuses an empty tag and `latest`")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(default="IfNotPresent", description="imagePullPolicy")

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else self.repository

    def problems(self, key: str, *, production: bool) -> list[Problem]:
        if self.tag and ":" in self.tag:
            return [Problem(f"{key}.tag", f"tag {self.tag!r} contains ':'; give the tag alone")]
        if production and (not self.tag or self.tag == "latest"):
            shown = self.tag or "missing"
            return [
                Problem(
                    f"{key}.tag",
                    f"image tag is {shown}; prod must pin a version so every pod runs the "
                    f"same image (e.g. pulumi config set --path {key}.tag v0.3.8)",
                )
            ]
        return []


class ResourceAmounts(ConfigModel):
    cpu: Quantity | None = Field(default=None, description="CPU quantity (250m, 1)")
    memory: Quantity | None = Field(default=None, description="memory quantity (512Mi, 2Gi)")
    ephemeral_storage: Quantity | None = Field(
        default=None,
        description="node disk the container may fill (its logs and emptyDir volumes; Kubernetes' ephemeral-storage)",
    )

    def as_kubernetes(self) -> dict[str, str]:
        # Kubernetes spells the resource with a hyphen, which no camelCase key has.
        amounts = self.model_dump(exclude_none=True)
        if "ephemeral_storage" in amounts:
            amounts["ephemeral-storage"] = amounts.pop("ephemeral_storage")
        return amounts


class ResourceSettings(ConfigModel):
    requests: ResourceAmounts = Field(default=ResourceAmounts(), description="requests; each must be <= its limit")
    limits: ResourceAmounts = Field(default=ResourceAmounts(), description="limits; a memory limit is required")

    def problems(self, key: str) -> list[Problem]:
        found: list[Problem] = []
        for resource, name in (("cpu", "cpu"), ("memory", "memory"), ("ephemeral_storage", "ephemeralStorage")):
            request = getattr(self.requests, resource)
            limit = getattr(self.limits, resource)
            if request is None and resource != "ephemeral_storage":
                found.append(
                    Problem(f"{key}.requests.{name}", f"set a {resource} request so the scheduler and the HPA can use it")
                )
            if limit is None and resource == "memory":
                found.append(Problem(f"{key}.limits.memory", "set a memory limit so one pod cannot starve its node"))
            if request is not None and limit is not None and parse_quantity(request) > parse_quantity(limit):
                found.append(
                    Problem(
                        f"{key}.requests.{name}",
                        f"request {request} is larger than limit {limit}; lower the request or raise {key}.limits.{name}",
                    )
                )
        return found

    def as_kubernetes(self) -> dict[str, dict[str, str]]:
        """The ``resources`` block of a container spec."""
        block: dict[str, dict[str, str]] = {}
        for part in ("requests", "limits"):
            amounts = getattr(self, part).as_kubernetes()
            if amounts:
                block[part] = amounts
        return block


class PersistenceSettings(ConfigModel):
    enabled: bool = Field(default=True, description="keep data on a PersistentVolumeClaim per pod")
    size: Quantity = Field(default="8Gi", description="volume size per pod")
    storage_class: str = Field(
        default="", description="StorageClass; empty: the top-level storageClass, then the cluster default"
    )

    def problems(self, key: str) -> list[Problem]:
        if self.enabled and parse_quantity(self.size) <= 0:
            return [Problem(f"{key}.size", "volume size must be larger than 0 (e.g. 20Gi)")]
        return []
