"""Images without Docker Hub: a Debian base made with mmdebstrap, the add-ons' images built
from their Go binaries, and the project's images/*/Dockerfile, all with buildah.

- The base, ``localhost/ai-infra-matrix/debian:bookworm-slim``, is mmdebstrap's minbase
  variant of the suite with the same dpkg path excludes as the official slim image (no man
  pages, docs, info or locales), so it stands in for ``debian:bookworm-slim``.
- Add-on images are ``FROM scratch`` with one static binary where the program needs nothing
  else; kube-router gets the base plus Debian's iptables and ipset, which it runs.
- Every image is cached by a key of its inputs (binary digest, recipe, base key): an
  unchanged image is never rebuilt, and each add-on image is kept as a docker-archive under
  ``CACHE/images`` for the nodes to import before the kubelet starts.

buildah keeps its store under ``CACHE/buildah`` with its own network and registry config,
so it neither writes /etc/cni nor ever asks a public registry for an image: every FROM is
resolved in the local store (``--pull=never``).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.cluster import layout, versions
from tools.cluster.node import PAUSE_IMAGE
from tools.cluster.util import CACHE, REPO, ClusterError, digest, fmt_seconds, run, say

LOCAL = "localhost/ai-infra-matrix"
BASE_IMAGE = f"{LOCAL}/debian:{versions.DEBIAN_SUITE}-slim"
IMAGES = CACHE / "images"
BUILDAH = CACHE / "buildah"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# the official slim image's /etc/dpkg/dpkg.cfg.d/docker, as mmdebstrap options
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
)


@dataclass(frozen=True)
class AddonImage:
    """An add-on image: a static binary, from scratch or on the base with Debian packages."""

    name: str
    version: str
    binary: str  # key into the built binaries
    entrypoint: tuple[str, ...]
    user: str = "65532:65532"
    debian_packages: tuple[str, ...] = ()  # non-empty: FROM the base, apt-get install these
    busybox: tuple[str, ...] = ()  # Debian's static busybox and these applets ("*": all of them)

    @property
    def ref(self) -> str:
        return f"{LOCAL}/{self.name}:{self.version}"


ADDON_IMAGES: tuple[AddonImage, ...] = (
    AddonImage("coredns", versions.COREDNS, "coredns", ("/coredns",)),
    AddonImage("registry", versions.DISTRIBUTION, "registry", ("/registry", "serve", "/etc/distribution/config.yml")),
    AddonImage("metrics-server", versions.METRICS_SERVER, "metrics-server", ("/metrics-server",)),
    AddonImage("local-path-provisioner", versions.LOCAL_PATH_PROVISIONER, "local-path-provisioner", ("/local-path-provisioner",)),
    # local-path's helper pod runs `sh /script/setup` (mkdir) and teardown (rm) on the node
    AddonImage(
        "local-path-helper",
        versions.LOCAL_PATH_PROVISIONER,
        "",
        ("/bin/sh",),
        user="0:0",
        busybox=("sh", "mkdir", "rm", "ls", "cat", "chmod"),
    ),
    AddonImage(
        "kube-router",
        versions.KUBE_ROUTER,
        "kube-router",
        ("/usr/local/bin/kube-router",),
        user="0:0",
        debian_packages=("iptables", "ipset", "conntrack"),
    ),
)


# A busybox image in the in-cluster registry, pulled by reference: for debugging pods
# (`kubectl run -it --image=<TOOLBOX_REF>`) and for the cluster tier's tests.
TOOLBOX = AddonImage("toolbox", "busybox-1.35", "", ("/bin/sh",), busybox=("*",))
TOOLBOX_REF = f"{layout.REGISTRY_HOST}/ai-infra-matrix/toolbox:{TOOLBOX.version}"


# The machine's own trust for its package registries (here a TLS-intercepting proxy's CA):
# its CA bundle is bind-mounted read-only at TRUST_DIR into every RUN step, with a pip.conf
# that points pip at it. Neither is copied into an image, and Debian's own
# /etc/ssl/certs stays the package's to write, so images carry nothing of the build machine.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TRUST_DIR = "/run/ai-infra-build-trust"
# The same trust as a JDK truststore (Debian's, generated from that bundle): Maven inside
# a build is pointed at it (MAVEN_OPTS), and it is mounted only for builds that run Maven.
HOST_JAVA_TRUSTSTORE = Path("/etc/ssl/certs/java/cacerts")


def _trust_mounts() -> list[str]:
    if not HOST_CA_BUNDLE.is_file():
        return []
    pip_conf = BUILDAH / "build-pip.conf"
    pip_conf.parent.mkdir(parents=True, exist_ok=True)
    pip_conf.write_text(f"[global]\ncert = {TRUST_DIR}/ca-certificates.crt\n")
    return [f"--volume={HOST_CA_BUNDLE}:{TRUST_DIR}/ca-certificates.crt:ro", f"--volume={pip_conf}:/etc/pip.conf:ro"]


def buildah(*args: str | Path, timeout: float = 1800) -> str:
    return run(["buildah", *args], env=_buildah_env(), timeout=timeout).stdout


def _buildah_env() -> dict[str, str]:
    """buildah's store, network config and registry policy, all under CACHE/buildah."""
    conf = BUILDAH / "conf"
    if not (conf / "registries.conf").exists():
        conf.mkdir(parents=True, exist_ok=True)
        (BUILDAH / "cni").mkdir(exist_ok=True)
        (conf / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{BUILDAH / "storage"}"\nrunroot = "{BUILDAH / "run"}"\n'
        )
        (conf / "containers.conf").write_text(
            f'[network]\nnetwork_config_dir = "{BUILDAH / "cni"}"\ncni_plugin_dirs = ["/usr/lib/cni"]\n'
        )
        public = ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "gcr.io")
        blocked = "".join(f'\n[[registry]]\nlocation = "{r}"\nblocked = true\n' for r in public)
        (conf / "registries.conf").write_text(f"unqualified-search-registries = []\n{blocked}")
        (conf / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}) + "\n")
    return {
        "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
        "CONTAINERS_CONF": str(conf / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
        "BUILDAH_ISOLATION": "chroot",
        "STORAGE_DRIVER": "overlay",
    }


def _stamp(name: str) -> Path:
    return IMAGES / f"{name}.key"


def _present(ref: str, key: str, name: str) -> bool:
    stamp = _stamp(name)
    if not stamp.exists() or stamp.read_text().strip() != key:
        return False
    result = run(["buildah", "inspect", "--type", "image", ref], env=_buildah_env(), check=False)
    return result.returncode == 0


def ensure_base() -> str:
    """The Debian base image in buildah's store; returns its cache key."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    key = digest(versions.DEBIAN_SUITE, MIRROR, SECURITY_MIRROR, *SLIM_DPKG_OPTIONS)
    if _present(BASE_IMAGE, key, "base"):
        return key
    tar = IMAGES / f"debian-{versions.DEBIAN_SUITE}-{key}.tar"
    if not tar.exists():
        say(f"building the Debian {versions.DEBIAN_SUITE} base with mmdebstrap from {MIRROR} (cold: ~1 min) ...")
        start = time.monotonic()
        suite = versions.DEBIAN_SUITE
        sources = [
            f"deb {MIRROR} {suite} main",
            f"deb {MIRROR} {suite}-updates main",
            f"deb {SECURITY_MIRROR} {suite}-security main",
        ]
        partial = tar.with_suffix(".partial")
        run(
            ["mmdebstrap", "--variant=minbase", "--format=tar", *(f"--dpkgopt={o}" for o in SLIM_DPKG_OPTIONS),
             "--aptopt=Acquire::Languages \"none\"", suite, partial, *sources],
            timeout=1800,
        )  # fmt: skip
        partial.rename(tar)
        say(f"base root filesystem ready in {fmt_seconds(time.monotonic() - start)} ({tar.stat().st_size >> 20} MB)")
    container = buildah("from", "scratch").strip()
    try:
        buildah("add", container, tar, "/")
        buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--cmd", "bash", "--label", f"ai-infra-matrix.input={key}", container)  # fmt: skip
        buildah("commit", "--rm", container, BASE_IMAGE)
    except ClusterError:
        run(["buildah", "rm", container], env=_buildah_env(), check=False)
        raise
    _stamp("base").write_text(key + "\n")
    return key


def ensure_addon_images(binaries: dict[str, Path]) -> list[Path]:
    """Build (or reuse) every add-on image and the pause image; return their archives."""
    base_key = ensure_base() if any(i.debian_packages for i in ADDON_IMAGES) else ""
    archives = [_pause_image()]
    for image in ADDON_IMAGES:
        archives.append(_addon_image(image, binaries, base_key))
    return archives


def push_toolbox(registry_port: int) -> str:
    """Build (or reuse) the toolbox image and push it to the cluster's registry."""
    _addon_image(TOOLBOX, {}, "")
    target = TOOLBOX_REF.replace(layout.REGISTRY_HOST, f"127.0.0.1:{registry_port}")
    buildah("push", "--tls-verify=false", TOOLBOX.ref, f"docker://{target}")
    return TOOLBOX_REF


def _archive(name: str, key: str) -> Path:
    return IMAGES / f"{name}-{key}.docker.tar"


def _export(ref: str, name: str, key: str) -> Path:
    archive = _archive(name, key)
    if not archive.exists():
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        buildah("push", ref, f"docker-archive:{partial}:{ref}")
        partial.rename(archive)
        for old in IMAGES.glob(f"{name}-*.docker.tar"):
            if old != archive:
                old.unlink()
    return archive


def _pause_image() -> Path:
    source = Path(__file__).with_name("pause.c")
    key = digest(source, "gcc -static -O2 -s")
    if not _present(PAUSE_IMAGE, key, "pause"):
        with tempfile.TemporaryDirectory() as tmp:
            run(["gcc", "-static", "-O2", "-s", "-o", f"{tmp}/pause", source])
            _from_scratch(PAUSE_IMAGE, Path(tmp), ("/pause",), "65535:65535", key)
        _stamp("pause").write_text(key + "\n")
    return _export(PAUSE_IMAGE, "pause", key)


def _addon_image(image: AddonImage, binaries: dict[str, Path], base_key: str) -> Path:
    binary = binaries[image.binary] if image.binary else Path(shutil.which("busybox") or "/bin/busybox")
    recipe = json.dumps(image.__dict__, sort_keys=True)
    # this file is part of every add-on image's recipe: changing how images are put together rebuilds them
    key = digest(recipe, binary, Path(__file__), base_key if image.debian_packages else "")
    if not _present(image.ref, key, image.name):
        say(f"building image {image.ref} ...")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            if image.busybox:
                (root / "bin").mkdir()
                shutil.copy2(binary, root / "bin" / "busybox")
                applets = run([binary, "--list"]).stdout.split() if image.busybox == ("*",) else image.busybox
                for applet in applets:
                    if applet != "busybox":
                        (root / "bin" / applet).symlink_to("busybox")
                (root / "tmp").mkdir()
                (root / "tmp").chmod(0o1777)  # the one place a non-root user can write
            elif image.debian_packages:
                (root / "usr" / "local" / "bin").mkdir(parents=True)
                shutil.copy2(binary, root / "usr" / "local" / "bin" / binary.name)
            else:
                shutil.copy2(binary, root / binary.name)
            if image.debian_packages:
                _on_base(image, root, key)
            else:
                _from_scratch(image.ref, root, image.entrypoint, image.user, key)
        _stamp(image.name).write_text(key + "\n")
    return _export(image.ref, image.name, key)


def _from_scratch(ref: str, root: Path, entrypoint: tuple[str, ...], user: str, key: str) -> None:
    container = buildah("from", "scratch").strip()
    try:
        buildah("add", container, f"{root}/.", "/")
        buildah("config", "--entrypoint", json.dumps(list(entrypoint)), "--user", user,
                "--label", f"ai-infra-matrix.input={key}", container)  # fmt: skip
        buildah("commit", "--rm", container, ref)
    except ClusterError:
        run(["buildah", "rm", container], env=_buildah_env(), check=False)
        raise


def _on_base(image: AddonImage, root: Path, key: str) -> None:
    packages = " ".join(image.debian_packages)
    (root / "Containerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        f"{packages} && rm -rf /var/lib/apt/lists/*\n"
        "COPY usr /usr\n"
        f"USER {image.user}\n"
        f"ENTRYPOINT {json.dumps(list(image.entrypoint))}\n"
        f"LABEL ai-infra-matrix.input={key}\n"
    )
    buildah("bud", "--pull=never", "--layers=false", *_trust_mounts(), "-f", root / "Containerfile", "-t", image.ref, root)


# ------------------------------------------------------------- project images ---

# The image directories `make images` builds: the platform's images, and the test images
# (the stand-in application), which are named as such by their title label.
PROJECT_IMAGE_GLOBS = ("images/*/Dockerfile", "tests/app/Dockerfile")

# Build-time caches bind-mounted read-write into every RUN step of an image whose
# Dockerfile declares the build args below (Go's module and build caches, Maven's local
# repository): a rebuild downloads and compiles only what changed. Like the trust
# mounts, nothing of them is committed into an image.
BUILD_CACHE = CACHE / "build-cache"
BUILD_CACHE_DIR = "/run/ai-infra-build-cache"
GO_BUILDER = f"{LOCAL}/golang"


@dataclass(frozen=True)
class ProjectImage:
    directory: Path
    repository: str
    tag: str

    @property
    def name(self) -> str:
        """images/redis -> "redis", tests/app -> "tests-app": what `images <name>` selects."""
        relative = self.directory.relative_to(REPO)
        parts = relative.parts[1:] if relative.parts[0] == "images" else relative.parts
        return "-".join(parts)

    @property
    def ref(self) -> str:
        return f"{layout.REGISTRY_HOST}/{self.repository}:{self.tag}"

    def selected_by(self, only: tuple[str, ...]) -> bool:
        relative = str(self.directory.relative_to(REPO))
        return not only or any(o.rstrip("/") in (self.name, self.directory.name, relative) for o in only)


def image_labels(dockerfile: Path) -> tuple[str, str]:
    """(name, tag) of an image from its org.opencontainers.image.title/version labels."""
    labels = dict(re.findall(r'org\.opencontainers\.image\.(title|version)="([^"]+)"', dockerfile.read_text()))
    if "title" not in labels or "version" not in labels:
        raise ClusterError(
            f"{dockerfile.relative_to(REPO)} has no LABEL org.opencontainers.image.title=... and "
            '...version=...; add them (e.g. title="ai-infra-patroni" version="4.1.5-pg15") so `make images` can tag it'
        )
    return labels["title"], labels["version"]


def project_images() -> list[ProjectImage]:
    """Every image directory of PROJECT_IMAGE_GLOBS, named by its title/version labels."""
    dockerfiles = sorted(p for pattern in PROJECT_IMAGE_GLOBS for p in REPO.glob(pattern))
    return [ProjectImage(d.parent, *image_labels(d)) for d in dockerfiles]


def declared_args(dockerfile: Path) -> set[str]:
    """The names of every ARG the Dockerfile declares (in any stage)."""
    return set(re.findall(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", dockerfile.read_text(), flags=re.MULTILINE))


def _go_env(name: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise ClusterError("go is not installed; the exporters' images build with this machine's Go (>= 1.24)")
    return run([go, "env", name]).stdout.strip()


def ensure_go_builder(base_key: str) -> tuple[str, str]:
    """A Go builder image, the base plus this machine's GOROOT, standing in for the
    golang image that cannot be pulled here; returns (reference, cache key)."""
    version = _go_env("GOVERSION")  # go1.26.8
    goroot = Path(_go_env("GOROOT"))
    ref = f"{GO_BUILDER}:{version.removeprefix('go')}"
    key = digest(base_key, version, str(goroot))
    if not _present(ref, key, "golang"):
        say(f"building the Go builder image {ref} from {goroot} ...")
        container = buildah("from", "--pull=never", BASE_IMAGE).strip()
        try:
            buildah("copy", container, goroot, "/usr/local/go")
            # as the golang image: GOPATH /go; and never fetch another toolchain
            path = "/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            buildah("config", "--env", f"PATH={path}", "--env", "GOPATH=/go", "--env", "GOTOOLCHAIN=local",
                    "--label", f"ai-infra-matrix.input={key}", container)  # fmt: skip
            buildah("commit", "--rm", container, ref)
        except ClusterError:
            run(["buildah", "rm", container], env=_buildah_env(), check=False)
            raise
        _stamp("golang").write_text(key + "\n")
    return ref, key


def _build_args(declared: set[str], base_key: str) -> tuple[list[str], str]:
    """The build args (and the volumes they need) this machine provides for the ARGs a
    Dockerfile declares, and the cache key of the builder image they name."""
    values: dict[str, str] = {"BASE": BASE_IMAGE}
    key = ""
    trusted = HOST_CA_BUNDLE.is_file()
    if "GO_IMAGE" in declared:
        values["GO_IMAGE"], key = ensure_go_builder(base_key)
        values |= {
            "GOPROXY": _go_env("GOPROXY"),
            "GOSUMDB": _go_env("GOSUMDB"),
            "GOCACHE": f"{BUILD_CACHE_DIR}/go/build",
            "GOMODCACHE": f"{BUILD_CACHE_DIR}/go/mod",
        }
        if trusted:
            values["SSL_CERT_FILE"] = f"{TRUST_DIR}/ca-certificates.crt"  # Go's own override of the system roots
    if "MAVEN_REPO_LOCAL" in declared:
        values["MAVEN_REPO_LOCAL"] = f"{BUILD_CACHE_DIR}/maven"
    args = []
    if "MAVEN_OPTS" in declared and HOST_JAVA_TRUSTSTORE.is_file():
        values["MAVEN_OPTS"] = f"-Djavax.net.ssl.trustStore={TRUST_DIR}/java-cacerts"
        args.append(f"--volume={HOST_JAVA_TRUSTSTORE}:{TRUST_DIR}/java-cacerts:ro")
    args += [f"--build-arg={name}={value}" for name, value in values.items() if name in declared]
    if any(value.startswith(BUILD_CACHE_DIR) for name, value in values.items() if name in declared):
        BUILD_CACHE.mkdir(parents=True, exist_ok=True)
        args.append(f"--volume={BUILD_CACHE}:{BUILD_CACHE_DIR}")
    return args, key


def build_project_images(only: tuple[str, ...] = ()) -> list[ProjectImage]:
    base_key = ensure_base()
    built = []
    for image in project_images():
        if not image.selected_by(only):
            continue
        dockerfile = image.directory / "Dockerfile"
        build_args, builder_key = _build_args(declared_args(dockerfile), base_key)
        files = sorted(p for p in image.directory.rglob("*") if p.is_file())
        # the builder image is an input only where there is one (keys of the others stay as they were)
        builders = (builder_key,) if builder_key else ()
        key = digest(base_key, *builders, *(str(p.relative_to(image.directory)) for p in files), *files)
        if not _present(image.ref, key, f"project-{image.name}"):
            start = time.monotonic()
            say(f"building {image.ref} from {dockerfile.relative_to(REPO)} on {BASE_IMAGE} ...")
            buildah("bud", "--pull=never", "--layers=false", *_trust_mounts(), *build_args,
                    "--label", f"ai-infra-matrix.input={key}", "-t", image.ref, image.directory, timeout=3600)  # fmt: skip
            _stamp(f"project-{image.name}").write_text(key + "\n")
            say(f"built {image.ref} in {fmt_seconds(time.monotonic() - start)}")
        built.append(image)
    if only and not built:
        names = ", ".join(i.name for i in project_images())
        raise ClusterError(f"no image directory matches {' '.join(only)}; the images are: {names}")
    return built


def push(images: list[ProjectImage], registry_port: int) -> None:
    """To the local cluster's registry, through the forwarder on the host's loopback."""
    for image in images:
        target = f"127.0.0.1:{registry_port}/{image.repository}:{image.tag}"
        buildah("push", "--tls-verify=false", image.ref, f"docker://{target}")
        say(f"pushed {image.ref}")


def push_to_registry(images: list[ProjectImage], registry: str, *, tls_verify: bool = True) -> list[str]:
    """Push the built images to ``registry`` (e.g. ghcr.io/OWNER) as REGISTRY/<title>:<version>,
    the names a stack's imageRegistry resolves; credentials from `buildah login REGISTRY`."""
    pushed = []
    for image in images:
        target = f"{registry.rstrip('/')}/{image.repository}:{image.tag}"
        buildah("push", f"--tls-verify={'true' if tls_verify else 'false'}", image.ref, f"docker://{target}", timeout=3600)
        say(f"pushed {image.ref} to {target}")
        pushed.append(target)
    return pushed
