"""An S3-compatible store on 127.0.0.1 for the backup conformance test: moto's server,
driven with the real AWS CLI v2 that upload-s3.sh uses in the amazon/aws-cli image.
tools/ci/install-backup.sh installs both."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

INSTALL_SCRIPT = "tools/ci/install-backup.sh"
MOTO = Path(os.environ.get("AI_INFRA_MOTO_VENV", str(Path.home() / ".cache/ai-infra-matrix/moto-5.2.5"))) / "bin/moto_server"
AWS = Path("/usr/bin/aws")
REGION = "us-east-1"


def missing_software() -> list[str]:
    return [str(path) for path in (MOTO, AWS) if not path.exists()]


@dataclass(frozen=True)
class Store:
    endpoint: str
    access_key: str
    secret_key: str

    def env(self, home: Path) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "aws-config"),
        }

    def aws(self, home: Path, *args: str) -> str:
        result = subprocess.run(
            [str(AWS), "--endpoint-url", self.endpoint, *args],
            env=self.env(home),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"aws {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout

    def keys(self, home: Path, url: str) -> list[str]:
        """Every object key below ``url`` (s3://bucket/prefix/), relative to it."""
        listing = self.aws(home, "s3", "ls", "--recursive", url)
        bucket_prefix = url.removeprefix("s3://").split("/", 1)[1]
        return sorted(line.split(maxsplit=3)[3].removeprefix(bucket_prefix) for line in listing.splitlines() if line.strip())


@contextlib.contextmanager
def moto_server(home: Path, access_key: str, secret_key: str) -> Iterator[Store]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "moto.log").open("ab")
    process = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"moto_server did not start:\n{(home / 'moto.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield Store(endpoint, access_key, secret_key)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
