"""A small reader of the project's Dockerfiles, enough for the definition tests: stages,
ARG defaults (global and per stage), LABELs, USER, and the packages each install names."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    base: str  # the FROM argument as written, e.g. ${BASE}
    name: str
    args: dict[str, str] = field(default_factory=dict)
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, rest)


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def resolve(self, text: str, stage: Stage) -> str:
        """``text`` with ${NAME} / $NAME replaced by the stage's ARG defaults (then the global ones)."""
        values = {**self.global_args, **stage.args}
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)

    def runs(self, stage: Stage) -> list[str]:
        return [rest for instruction, rest in stage.instructions if instruction == "RUN"]


def parse(path: Path) -> Dockerfile:
    # join continuation lines, drop comments
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        rest = rest.strip()
        if instruction == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append(Stage(parts[0], name))
            continue
        if instruction == "ARG":
            arg, _, default = rest.partition("=")
            target = stages[-1].args if stages else global_args
            # a bare `ARG NAME` in a stage takes the global default
            target[arg] = default if "=" in rest else global_args.get(arg, "")
        if stages:
            stages[-1].instructions.append((instruction, rest))
    return Dockerfile(path, global_args, stages)


def labels(dockerfile: Dockerfile) -> dict[str, str]:
    found: dict[str, str] = {}
    for instruction, rest in dockerfile.final.instructions:
        if instruction == "LABEL":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                found[key] = value
    return found


def user(dockerfile: Dockerfile) -> str:
    """The final stage's last USER, ARGs resolved ("" if none)."""
    users = [rest for instruction, rest in dockerfile.final.instructions if instruction == "USER"]
    return dockerfile.resolve(users[-1], dockerfile.final) if users else ""


def apt_packages(dockerfile: Dockerfile) -> list[tuple[str, str]]:
    """(stage name or "final", package as written, ARGs resolved) of every apt-get install."""
    found = []
    for stage in dockerfile.stages:
        where = "final" if stage is dockerfile.final else stage.name
        for run in dockerfile.runs(stage):
            for command in re.split(r"&&|;", run):
                if not command.strip().startswith("apt-get install"):
                    continue  # (other commands may quote across the split)
                words = shlex.split(command)
                for word in words[2:]:
                    if not word.startswith("-"):
                        found.append((where, dockerfile.resolve(word, stage)))
    return found
