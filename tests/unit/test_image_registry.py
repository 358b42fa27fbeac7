"""imageRegistry: the project's own images get the registry in front, nothing else does,
and a deploy that would run a project image from no registry is named before it starts."""

from __future__ import annotations

import re
from pathlib import Path

from settings import load_settings, unresolved_images_problem
from settings.images import PROJECT_IMAGES, project_images_without_registry
from tests.conftest import ROOT, objects

REGISTRY = "registry.example.com:5000/platform"


def _images(*overrides: str) -> set[str]:
    found = set()
    for _, template in objects("dev", *overrides).pod_templates():
        spec = template["spec"]
        found |= {c["image"] for c in spec.get("containers", []) + spec.get("initContainers", [])}
    return found


def test_every_project_image_is_built_from_a_dockerfile_of_this_repo() -> None:
    titles = {
        m.group(1)
        for d in (ROOT / "images").glob("*/Dockerfile")
        for m in [re.search(r'org\.opencontainers\.image\.title="([^"]+)"', Path(d).read_text())]
        if m
    }
    assert titles <= PROJECT_IMAGES, f"images/ builds {sorted(titles - PROJECT_IMAGES)}, which settings/images.py does not know"


def test_the_registry_prefixes_project_images_and_nothing_else() -> None:
    plain, prefixed = _images(), _images(f"imageRegistry={REGISTRY}")
    ours = {i for i in plain if i.split(":")[0] in PROJECT_IMAGES}
    assert ours, "the dev stack runs no project image"
    assert prefixed == (plain - ours) | {f"{REGISTRY}/{i}" for i in ours}


def test_a_repository_with_its_own_registry_is_left_as_written() -> None:
    images = _images(f"imageRegistry={REGISTRY}", "patroni.image.repository=docker.io/acme/patroni")
    assert "docker.io/acme/patroni:4.1.5-pg15" in images


def test_a_deploy_without_registry_names_every_project_image_of_an_enabled_part() -> None:
    dev = load_settings({}, stack="dev")
    unresolved = dict(project_images_without_registry(dev))
    assert unresolved["patroni.image"] == "ai-infra-patroni:4.1.5-pg15"
    problem = unresolved_images_problem(list(unresolved.items()))
    assert problem.key == "imageRegistry" and "make images-push REGISTRY=" in problem.message
    assert not list(project_images_without_registry(load_settings({"imageRegistry": REGISTRY}, stack="dev")))
    without_patroni = dict(project_images_without_registry(load_settings({"patroni": {"enabled": False}}, stack="dev")))
    assert "patroni.image" not in without_patroni
