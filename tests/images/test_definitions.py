"""The image definitions (images/*/Dockerfile and the test image tests/app) hold the
project's rules, read from the files alone (nothing is built, no buildah needed):

- FROM a base build arg that defaults to debian:bookworm-slim, no `latest` anywhere;
- the title/version labels `make images` tags with, versions matching what is installed;
- a numeric non-root USER equal to the runAsUser of the pods that run the image;
- every package pinned: Debian packages by version (or a version in the name), PyPI
  requirements with ==, Go modules by go.mod/go.sum, Maven by the pom;
- the same versions as the conformance tests run (tools/ci) and the settings' defaults;
- the publishing workflow builds every image.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from components.kafka_kraft import KAFKA_UID
from components.redis_cluster import EXPORTER_UID, REDIS_UID
from settings.defaults import profile_defaults
from tests.conftest import ROOT
from tests.images.dockerfiles import Dockerfile, apt_packages, labels, parse, user
from tools.cluster.images import ProjectImage, project_images

IMAGES = {image.repository: image for image in project_images()}
TEST_IMAGES = {"ai-infra-test-app"}
DEFAULTS = profile_defaults("dev")

# The uid each image must run as: the pods' runAsUser, read from where the program takes it.
EXPECTED_UID = {
    "ai-infra-patroni": DEFAULTS["patroni"]["runAsUser"],
    "ai-infra-redis": REDIS_UID,
    "ai-infra-redis-exporter": EXPORTER_UID,
    "ai-infra-kafka": KAFKA_UID,
    # both backup CronJobs run as the uid of the system they dump (components/backups.py)
    "ai-infra-backup": REDIS_UID,
    # the application tier sets no runAsUser yet: the image's own, non-root
    "ai-infra-test-app": 10001,
}

# Debian packages that may float within bookworm, each for a reason; any other must be pinned.
UNPINNED_OK = {
    "ca-certificates": "trust roots: always the newest",
    "unzip": "lists the jars' classes in the Kafka jars stage",
    "python3": "bookworm's Python is 3.11; the suite fixes the minor version",
    "python3-venv": "the same Python 3.11",
    "postgresql-common": "Debian's cluster helper scripts, not PostgreSQL",
}


def dockerfile(title: str) -> Dockerfile:
    return parse(IMAGES[title].directory / "Dockerfile")


def test_every_image_directory_is_found_with_a_unique_honest_name():
    assert set(IMAGES) == set(EXPECTED_UID), "a new image needs its uid rule here"
    assert len(IMAGES) == len(project_images()), "two image directories share a title"
    for title, image in IMAGES.items():
        assert title.startswith("ai-infra-")
        in_tests = image.directory.is_relative_to(ROOT / "tests")
        assert in_tests == (title in TEST_IMAGES), f"{title}: test images live under tests/ and only there"
        assert in_tests == ("test" in title), f"{title}: a test image says so in its name, and only a test image"


@pytest.mark.parametrize("title", sorted(IMAGES))
def test_from_a_base_build_arg_and_never_latest(title: str):
    parsed = dockerfile(title)
    assert parsed.global_args.get("BASE") == "debian:bookworm-slim", f"{title}: ARG BASE=debian:bookworm-slim before FROM"
    assert parsed.final.base == "${BASE}", f"{title}: the image itself is FROM ${{BASE}}"
    stage_names = {stage.name for stage in parsed.stages}
    for stage in parsed.stages:
        assert stage.base.startswith("${") or stage.base in stage_names, f"{title}: FROM {stage.base} is not a build arg"
    for name, default in parsed.global_args.items():
        if name.endswith(("BASE", "IMAGE")):
            assert ":" in default and not default.endswith(":latest"), f"{title}: ARG {name}={default} needs a pinned tag"
    text = (IMAGES[title].directory / "Dockerfile").read_text()
    assert not re.search(r":latest\b", text), f"{title} mentions a latest tag"


@pytest.mark.parametrize("title", sorted(IMAGES))
def test_labels_name_the_image(title: str):
    found = labels(dockerfile(title))
    assert found["org.opencontainers.image.title"] == title
    version = found["org.opencontainers.image.version"]
    assert re.fullmatch(r"\d[\w.-]*", version) and version != "latest", f"{title}: version {version!r}"


@pytest.mark.parametrize("title", sorted(IMAGES))
def test_user_is_numeric_and_the_pods_run_as_user(title: str):
    found = user(dockerfile(title))
    assert re.fullmatch(r"\d+:\d+", found), (
        f"{title}: USER must be numeric uid:gid (the kubelet checks runAsNonRoot), got {found!r}"
    )
    uid, gid = (int(part) for part in found.split(":"))
    assert uid != 0
    assert uid == EXPECTED_UID[title] == gid, f"{title}: USER {found}, the pods run as {EXPECTED_UID[title]}"


def test_the_backup_uid_serves_both_backup_cronjobs():
    assert DEFAULTS["patroni"]["runAsUser"] == REDIS_UID == EXPECTED_UID["ai-infra-backup"]


@pytest.mark.parametrize("title", sorted(IMAGES))
def test_debian_packages_are_pinned(title: str):
    for stage, package in apt_packages(dockerfile(title)):
        name = package.split("=", 1)[0]
        if name in UNPINNED_OK:
            continue
        # pinned: name=version (a glob over Debian revisions), or the major in the name (postgresql-15)
        assert "=" in package or re.search(r"-\d+(-|$)", name), (
            f"{title} ({stage} stage): {package} is not pinned; use {name}=<version>* or add it to UNPINNED_OK with a reason"
        )


def test_pypi_requirements_are_pinned():
    for image in IMAGES.values():
        for requirements in image.directory.glob("requirements*.txt"):
            for raw in requirements.read_text().splitlines():
                line = raw.split("#", 1)[0].strip()
                if line:
                    assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"{requirements}: {line} is not pinned with =="
        text = (image.directory / "Dockerfile").read_text()
        for spec in re.findall(r"pip install [^\n]*?\"([^\"]+)\"", text):
            assert "==" in spec, f"{image.repository}: pip install {spec} is not pinned"


def test_test_app_uses_the_client_versions_the_tests_run():
    app = dict(
        line.split("==")
        for line in (IMAGES["ai-infra-test-app"].directory / "requirements.txt").read_text().split()
        if "==" in line
    )
    dev = dict(line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().split() if "==" in line)
    assert app["redis"] == dev["redis"]
    assert app["confluent-kafka"] == dev["confluent-kafka"]
    patroni = dockerfile("ai-infra-patroni")
    assert app["psycopg[binary]"] == patroni.final.args["PSYCOPG_VERSION"]


def test_redis_images_install_the_version_of_the_settings():
    tag = DEFAULTS["redisCluster"]["image"]["tag"]
    redis = dockerfile("ai-infra-redis")
    assert redis.final.args["REDIS_VERSION"] == tag == labels(redis)["org.opencontainers.image.version"]
    backup = dockerfile("ai-infra-backup")
    assert backup.final.args["REDIS_VERSION"] == tag
    assert labels(backup)["org.opencontainers.image.version"] == f"{backup.final.args['PG_MAJOR']}-{tag}"
    assert backup.final.args["PG_MAJOR"] == dockerfile("ai-infra-patroni").final.args["PG_MAJOR"]


def _go_tool_version(image: ProjectImage, module: str) -> str:
    gomod = (image.directory / "go.mod").read_text()
    assert re.search(rf"^tool {re.escape(module)}$", gomod, re.MULTILINE), f"{image.repository}: go.mod has no tool {module}"
    match = re.search(rf"^\s+{re.escape(module)} (v\S+)", gomod, re.MULTILINE)
    assert match, f"{image.repository}: go.mod does not require {module}"
    version = match.group(1)
    assert f"{module} {version} h1:" in (image.directory / "go.sum").read_text(), f"{module} {version} has no hash in go.sum"
    return version


def test_redis_exporter_is_pinned_by_go_mod_and_go_sum():
    image = IMAGES["ai-infra-redis-exporter"]
    version = _go_tool_version(image, "github.com/oliver006/redis_exporter")
    parsed = dockerfile("ai-infra-redis-exporter")
    build = parsed.stages[0]
    assert build.args["REDIS_EXPORTER_VERSION"] == version
    assert labels(parsed)["org.opencontainers.image.version"] == version.removeprefix("v")
    # upstream's tag is v1.62.0, ours 1.62.0: either names the same version
    assert DEFAULTS["redisCluster"]["exporter"]["image"]["tag"].removeprefix("v") == version.removeprefix("v")
    assert "-mod=readonly" in " ".join(parsed.runs(build)), "the build must use go.sum as it is"
    assert parsed.global_args["GO_IMAGE"].startswith("golang:")


def _pom_dependencies(path: Path) -> set[tuple[str, str, str]]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(path).getroot()
    properties = {child.tag.split("}")[1]: child.text or "" for child in root.find("m:properties", ns) or []}

    def text(element: ET.Element, tag: str) -> str:
        value = element.findtext(f"m:{tag}", default="", namespaces=ns)
        return re.sub(r"\$\{([^}]+)\}", lambda m: properties[m.group(1)], value)

    return {
        (text(d, "groupId"), text(d, "artifactId"), text(d, "version")) for d in root.iterfind("m:dependencies/m:dependency", ns)
    }


def test_kafka_jars_are_the_conformance_tests_jars():
    image = IMAGES["ai-infra-kafka"]
    ours = _pom_dependencies(image.directory / "pom.xml")
    assert ours == _pom_dependencies(ROOT / "tools" / "ci" / "kafka-pom.xml")
    parsed = dockerfile("ai-infra-kafka")
    version = parsed.global_args["KAFKA_VERSION"]
    assert ("org.apache.kafka", "kafka_2.13", version) in ours
    assert labels(parsed)["org.opencontainers.image.version"] == version == DEFAULTS["kafka"]["image"]["tag"]
    jars = parsed.stages[0]
    assert re.fullmatch(r"\d+\.\d+\.\d+", jars.args["DEPENDENCY_PLUGIN_VERSION"]), "the Maven plugin is pinned"
    assert f":{'${DEPENDENCY_PLUGIN_VERSION}'}:copy-dependencies" in " ".join(parsed.runs(jars))


def test_kafka_launchers_cover_the_guides_commands():
    bin_dir = IMAGES["ai-infra-kafka"].directory / "bin"
    listed = re.findall(r"^(kafka-[\w-]+\.sh) (\S+)$", (bin_dir / "kafka-tool.sh").read_text(), re.MULTILINE)
    names = {name for name, _ in listed}
    guide = {"kafka-topics.sh", "kafka-broker-api-versions.sh", "kafka-console-producer.sh", "kafka-console-consumer.sh"}
    assert guide | {"kafka-metadata-quorum.sh", "kafka-storage.sh", "kafka-reassign-partitions.sh"} <= names
    assert len(names) == len(listed), "a command is listed twice"
    assert (bin_dir / "kafka-server-start.sh").is_file()
    # the pods' entrypoint.sh calls these two by path
    entrypoint = (ROOT / "components" / "files" / "kafka" / "entrypoint.sh").read_text()
    assert "$kafka_home/bin/kafka-server-start.sh" in entrypoint and "$kafka_home/bin/kafka-storage.sh" in entrypoint


def test_kafka_image_layout_matches_the_pods():
    from components.kafka_kraft import DATA_MOUNT, KAFKA_PATH

    parsed = dockerfile("ai-infra-kafka")
    env = " ".join(rest for instruction, rest in parsed.final.instructions if instruction == "ENV")
    assert "KAFKA_HOME=/opt/kafka" in env
    assert f"PATH={KAFKA_PATH}" in env, "the image's PATH is the one the pods set"
    assert DATA_MOUNT in " ".join(parsed.runs(parsed.final))


def test_workflow_builds_and_publishes_every_image():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "images.yml").read_text())
    assert list(workflow[True]["push"]["branches"]) == ["main"]  # YAML 1.1 reads `on` as True
    job = workflow["jobs"]["images"]
    directories = set(job["strategy"]["matrix"]["context"])
    assert directories == {str(image.directory.relative_to(ROOT)) for image in IMAGES.values()}
    assert job["permissions"]["packages"] == "write"
    text = (ROOT / ".github" / "workflows" / "images.yml").read_text()
    # lower-cased: registry paths are, an owner's name may not be
    assert "owner=${GITHUB_REPOSITORY_OWNER,,}" in text
    assert "image=ghcr.io/$owner/$title:$version" in text
