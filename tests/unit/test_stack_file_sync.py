"""settings.stack_file.sync_local_copy: the local backend's copy of a stack file keeps
what `pulumi config set [--path]` wrote, under the tracked file and over the target's
defaults, value by value."""

from __future__ import annotations

from pathlib import Path

import yaml

from settings.stack_file import sync_local_copy

P = "ai-infra-matrix"
DEFAULTS = {f"{P}:kafka": {"exporter": {"enabled": False}, "ui": {"enabled": False}}, f"{P}:imageRegistry": "local:5000"}


def _write(path: Path, config: dict, **extra: object) -> None:
    path.write_text(yaml.safe_dump({**extra, "config": config}))


def _config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


def _set_path(path: Path, top: str, *parts_and_value: object) -> None:
    """What `pulumi config set --path top.a.b value` does to the copy."""
    document = yaml.safe_load(path.read_text())
    node = document["config"].setdefault(top, {})
    *parts, last, value = parts_and_value
    for part in parts:
        node = node.setdefault(part, {})
    node[last] = value
    path.write_text(yaml.safe_dump(document))


def test_a_path_set_beside_the_targets_defaults_survives_the_next_sync(tmp_path: Path) -> None:
    tracked, local = tmp_path / "Pulumi.prod.yaml", tmp_path / "copy" / "Pulumi.prod.yaml"
    _write(tracked, {f"{P}:profile": "prod"})
    sync_local_copy(tracked, local, DEFAULTS)
    _set_path(local, f"{P}:kafka", "replicaCount", 5)
    sync_local_copy(tracked, local, DEFAULTS)
    kafka = _config(local)[f"{P}:kafka"]
    assert kafka == {"exporter": {"enabled": False}, "ui": {"enabled": False}, "replicaCount": 5}


def test_the_tracked_file_wins_value_by_value_and_its_removed_values_go(tmp_path: Path) -> None:
    tracked, local = tmp_path / "Pulumi.prod.yaml", tmp_path / "copy" / "Pulumi.prod.yaml"
    _write(tracked, {f"{P}:patroni": {"replicaCount": 3, "ttl": 20}})
    sync_local_copy(tracked, local, None)
    _set_path(local, f"{P}:patroni", "replicaCount", 5)  # the tracked file says 3: it wins
    _set_path(local, f"{P}:patroni", "loopWait", 7)  # the tracked file is silent: it stays
    _write(tracked, {f"{P}:patroni": {"replicaCount": 3}})  # ttl removed from git
    sync_local_copy(tracked, local, None)
    assert _config(local)[f"{P}:patroni"] == {"replicaCount": 3, "loopWait": 7}


def test_secrets_and_the_salt_stay_and_a_user_value_beats_a_target_default(tmp_path: Path) -> None:
    tracked, local = tmp_path / "Pulumi.prod.yaml", tmp_path / "copy" / "Pulumi.prod.yaml"
    _write(tracked, {f"{P}:profile": "prod"})
    sync_local_copy(tracked, local, DEFAULTS)
    document = yaml.safe_load(local.read_text())
    document["encryptionsalt"] = "v1:salt"
    document["config"][f"{P}:redisPassword"] = {"secure": "v1:abc"}
    document["config"][f"{P}:imageRegistry"] = "ghcr.io/acme"
    local.write_text(yaml.safe_dump(document))
    sync_local_copy(tracked, local, DEFAULTS)
    synced = yaml.safe_load(local.read_text())
    assert synced["encryptionsalt"] == "v1:salt"
    assert synced["config"][f"{P}:redisPassword"] == {"secure": "v1:abc"}
    assert synced["config"][f"{P}:imageRegistry"] == "ghcr.io/acme"


def test_the_targets_defaults_go_when_the_target_changes(tmp_path: Path) -> None:
    tracked, local = tmp_path / "Pulumi.dev.yaml", tmp_path / "copy" / "Pulumi.dev.yaml"
    _write(tracked, {f"{P}:profile": "dev"})
    sync_local_copy(tracked, local, DEFAULTS)
    sync_local_copy(tracked, local, None)  # deployed elsewhere now
    assert _config(local) == {f"{P}:profile": "dev"}


def test_a_sync_that_changes_nothing_leaves_the_copy_untouched_and_no_partial_file(tmp_path: Path) -> None:
    """Runs of tools/stack.sh side by side sync the same copy: an unchanged copy is not
    written at all (no reader can see it half written), a changed one is replaced whole."""
    tracked, local = tmp_path / "Pulumi.prod.yaml", tmp_path / "copy" / "Pulumi.prod.yaml"
    _write(tracked, {f"{P}:profile": "prod"})
    sync_local_copy(tracked, local, DEFAULTS)
    first = local.stat()
    sync_local_copy(tracked, local, DEFAULTS)
    assert (local.stat().st_ino, local.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    _write(tracked, {f"{P}:profile": "prod", f"{P}:namespace": "elsewhere"})
    sync_local_copy(tracked, local, DEFAULTS)
    assert local.stat().st_ino != first.st_ino  # replaced, not rewritten in place
    assert _config(local)[f"{P}:namespace"] == "elsewhere"
    assert sorted(p.name for p in local.parent.iterdir()) == ["Pulumi.prod.yaml", "Pulumi.prod.yaml.taken"]
