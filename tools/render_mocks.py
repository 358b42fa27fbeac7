"""The mocked Pulumi runtime the offline render evaluates the program under, and the
bench's render floor registers its objects under (tools/benchmark/replay.py): every
registration is answered with its own inputs, as the provider answers a preview, with
fixed stand-ins for the random values. Imports pulumi, not the program or its settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import string
import typing
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pulumi


@contextmanager
def mocked_runtime(project: str, stack: str) -> Iterator[RenderMocks]:
    """Pulumi's runtime in mock mode on a fresh event loop, for one program run
    (``pulumi.runtime.test``); the mocks record what it registers.

    The SDK takes a Python stack trace (every frame's source line read through linecache)
    for each registration, for the engine to show where a resource was declared. Nothing
    reads them under mocks, and they cost an eighth of the prod render's registration time
    (0.28 -> 0.25 s of CPU, the least of 8 runs each), so they are left out here, and only
    here: a real preview or up keeps them.
    """
    import pulumi
    from pulumi.runtime import resource as sdk_resource

    mocks = RenderMocks()
    # RenderMocks has the two methods of pulumi.runtime.Mocks; it stays a plain class so
    # importing this module does not import pulumi.
    as_mocks = typing.cast("pulumi.runtime.Mocks", mocks)
    stack_trace = getattr(sdk_resource, "_get_stack_trace", None)
    if stack_trace is not None:
        sdk_resource._get_stack_trace = _no_stack_trace
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        pulumi.runtime.set_mocks(as_mocks, project=project, stack=stack, preview=False, monitor=echo_monitor(as_mocks))
        yield mocks
    finally:
        if stack_trace is not None:
            sdk_resource._get_stack_trace = stack_trace
        asyncio.get_event_loop().close()
        pulumi.runtime.settings.reset_options()


def _no_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


class RenderMocks:
    """Records every Kubernetes object as the provider would receive it."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.types: Counter[str] = Counter()
        self.ignore_changes: dict[tuple[str, str], tuple[str, ...]] = {}

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        self.types[args.typ] += 1
        inputs = plain(args.inputs)
        if args.typ.startswith("kubernetes:") and not args.typ.startswith("pulumi:providers:"):
            if not inputs.get("metadata", {}).get("name"):
                raise ValueError(f"{args.typ} {args.name!r} has no metadata.name; every object needs an explicit name")
            self.objects.append(inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            inputs["result"] = stand_in_password(args.name, int(inputs.get("length", 32)))
        if args.typ == "random:index/randomId:RandomId":
            inputs |= stand_in_id(args.name, int(inputs.get("byteLength", 16)))
        return f"{args.name}-id", inputs

    def call(self, args: Any) -> dict[str, Any]:
        return {}


def echo_monitor(mocks: pulumi.runtime.Mocks) -> pulumi.runtime.mocks.MockMonitor:
    """The SDK's mock monitor, answering each registration with the request's own inputs.

    MockMonitor turns every request's protobuf Struct into Python values for the mocks, in
    pure Python, and the mocks' answer back into a Struct: 0.05 s of the 0.25 s the ~90
    registrations of prod take. The render's answer is the inputs (plus stand-ins for the
    random values), as the provider answers a preview, so this reads the inputs with
    protobuf's own converter and sends the request's Struct back with the stand-ins added.
    """
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime import mocks as sdk_mocks
    from pulumi.runtime.proto import resource_pb2

    class EchoMonitor(sdk_mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
            if request.type == "pulumi:pulumi:Stack":
                return super().RegisterResource(request)
            urn = self.make_urn(request.parent, request.type, request.name)
            inputs = json_format.MessageToDict(request.object)
            args = sdk_mocks.MockResourceArgs(request.type, request.name, inputs, request.provider, custom=request.custom)
            resource_id, state = self.mocks.new_resource(args)
            if request.ignoreChanges:
                recorded = typing.cast("RenderMocks", self.mocks).ignore_changes
                recorded[(inputs.get("kind", request.type), inputs.get("metadata", {}).get("name", request.name))] = tuple(
                    request.ignoreChanges
                )
            answer = struct_pb2.Struct()
            answer.CopyFrom(request.object)
            answer.update({key: value for key, value in state.items() if key not in inputs})  # the stand-ins
            self.resources[urn] = sdk_mocks.MockMonitor.ResourceRegistration(urn, resource_id or "", state)
            return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id or "", object=answer)

    return EchoMonitor(mocks)


# How Pulumi's wire format marks a secret value (sdk/python/lib/pulumi/runtime/rpc.py).
SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"


def plain(value: Any) -> Any:
    """Inputs cross Pulumi's protobuf Structs, where every number is a float; give
    integral numbers back their int type, as the provider would."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if value.get(SECRET_SIGNATURE_KEY) == SECRET_SIGNATURE:
            return plain(value.get("value"))  # a secret crossing the mock monitor
        if SECRET_SIGNATURE_KEY in value:
            raise ValueError(f"an input the render cannot write (a resource reference, asset or archive): {value!r}")
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def stand_in_password(name: str, length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    digest = hashlib.sha256(f"render:{name}".encode()).digest()
    while len(digest) < length:
        digest += hashlib.sha256(digest).digest()
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


def stand_in_id(name: str, byte_length: int) -> dict[str, str]:
    import base64

    raw = hashlib.sha256(f"render-id:{name}".encode()).digest()[:byte_length]
    return {
        "hex": raw.hex(),
        "b64Url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "b64Std": base64.b64encode(raw).decode(),
        "dec": str(int.from_bytes(raw, "big")),
    }
