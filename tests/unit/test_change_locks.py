"""The change locks (components/change_locks.py): which lock each change replaces, which
override lifts which protection, and what the data StatefulSets carry for a planned
replacement. The engine's refusal itself is shown by tests/e2e/test_data_safety.py."""

from __future__ import annotations

from typing import Any

import pytest

from components import change_locks
from tests.conftest import objects
from tools import render as render_tool

VOLUME_LOCKS = [
    "patroni.persistence+storageClass",
    "redisCluster.persistence+storageClass",
    "kafka.controller.persistence+storageClass",
    "kafka.persistence+storageClass",
    "backup.storageClass+storageClass",
]
RANDOM_ID = change_locks.random.RandomId  # the real class, whatever a test has patched
DATA_STATEFULSETS = ["ai-infra-patroni", "ai-infra-redis-cluster", "ai-infra-kafka-controller", "ai-infra-kafka"]


def _locks(monkeypatch: pytest.MonkeyPatch, stack: str, *overrides: str) -> dict[str, dict[str, Any]]:
    """Every change lock of one render: guarded keys -> keepers (secrets as their values) and protection."""
    seen: dict[str, dict[str, Any]] = {}

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        if "-change-refused-unless-" in name:
            guarded, override = name.split("-change-refused-unless-")
            seen[guarded] = {"keepers": kwargs["keepers"], "protect": kwargs["opts"].protect, "override": override}
        return RANDOM_ID(name, *args, **kwargs)

    monkeypatch.setattr(change_locks.random, "RandomId", spy)
    render_tool.render(stack, overrides)
    return seen


def test_prod_protects_every_lock_and_dev_none(monkeypatch):
    prod = _locks(monkeypatch, "prod")
    expected = {
        *VOLUME_LOCKS,
        "namespace+releaseName",
        "patroni.enabled",
        "redisCluster.enabled",
        "kafka.enabled",
        "postgresPassword+replicationPassword+patroni.postgresql",
        "redisPassword",
        "kafka.controller+clusterDomain",
    }
    assert set(prod) == expected
    assert all(lock["protect"] for lock in prod.values())
    assert not any(lock["protect"] for lock in _locks(monkeypatch, "dev").values())


@pytest.mark.parametrize(
    ("override", "lifted"),
    [
        ("dataSafety.allowVolumeClaimChange=true", set(VOLUME_LOCKS)),
        ("dataSafety.allowCredentialChange=true", {"postgresPassword+replicationPassword+patroni.postgresql", "redisPassword"}),
        ("dataSafety.allowRemoval=true", {"namespace+releaseName", "patroni.enabled", "redisCluster.enabled", "kafka.enabled"}),
    ],
)
def test_each_override_lifts_its_own_locks_only(monkeypatch, override, lifted):
    locks = _locks(monkeypatch, "prod", override)
    assert {guarded for guarded, lock in locks.items() if not lock["protect"]} == lifted
    # Each lock's name says which key lifts it.
    assert {lock["override"] for guarded, lock in locks.items() if guarded in lifted} == {override.split("=")[0]}


@pytest.mark.parametrize(
    ("change", "replaced"),
    [
        ("patroni.persistence.size=50Gi", {"patroni.persistence+storageClass"}),
        ("kafka.controller.persistence.size=20Gi", {"kafka.controller.persistence+storageClass"}),
        ("redisCluster.persistence.storageClass=fast", {"redisCluster.persistence+storageClass"}),
        ("backup.storageClass=fast", {"backup.storageClass+storageClass"}),
        ("storageClass=fast", set(VOLUME_LOCKS)),
        ("namespace=elsewhere", {"namespace+releaseName", "kafka.controller+clusterDomain"}),
        ("clusterDomain=cluster.example", {"kafka.controller+clusterDomain"}),
        ("patroni.replicaCount=5", set()),
        ("kafka.replicaCount=5", set()),
    ],
)
def test_a_change_alters_exactly_the_locks_it_must(monkeypatch, change, replaced):
    base = _locks(monkeypatch, "prod")
    changed = _locks(monkeypatch, "prod", change)
    # The credentials locks keep an Output (a hash of generated values): compared by tests/e2e.
    plain = [guarded for guarded, lock in base.items() if all(isinstance(v, str) for v in lock["keepers"].values())]
    assert {guarded for guarded in plain if base[guarded]["keepers"] != changed[guarded]["keepers"]} == replaced


def test_the_postgresql_roles_and_database_fixed_at_bootstrap_are_locked_with_the_passwords(monkeypatch):
    guarded = "postgresPassword+replicationPassword+patroni.postgresql"
    base = _locks(monkeypatch, "prod")[guarded]["keepers"]
    for change in ("patroni.postgresql.username=admin", "patroni.postgresql.database=other_db"):
        changed = _locks(monkeypatch, "prod", change)[guarded]["keepers"]
        assert {key: changed[key] for key in ("roles", "database")} != {key: base[key] for key in ("roles", "database")}


def test_the_credentials_lock_holds_a_hash_never_the_password():
    secret = "a-new-password-1234567"
    fingerprint = change_locks.credential_fingerprint([secret])
    assert len(fingerprint) == 64 and secret not in fingerprint
    assert fingerprint != change_locks.credential_fingerprint([secret + "x"])


def test_protected_stacks_orphan_the_pods_of_a_replaced_statefulset():
    for name in DATA_STATEFULSETS:
        prod = objects("prod").get("StatefulSet", name)["metadata"]["annotations"]
        assert prod[change_locks.DELETION_PROPAGATION] == "orphan"
    dev = objects("dev").get("StatefulSet", "ai-infra-patroni")["metadata"].get("annotations", {})
    assert change_locks.DELETION_PROPAGATION not in dev


def test_the_volume_override_grows_every_members_claim_in_place():
    plain = objects("prod", "patroni.persistence.size=50Gi")
    assert not [name for name in plain.names("PersistentVolumeClaim") if name.startswith("pgdata-")]
    grown = objects("prod", "patroni.persistence.size=50Gi", "dataSafety.allowVolumeClaimChange=true")
    claims = {name: grown.get("PersistentVolumeClaim", name) for name in grown.names("PersistentVolumeClaim")}
    members = [f"pgdata-ai-infra-patroni-{ordinal}" for ordinal in range(3)]
    for name in members:
        assert claims[name]["spec"] == {"resources": {"requests": {"storage": "50Gi"}}}
        assert claims[name]["metadata"]["annotations"][change_locks.PATCH_FORCE] == "true"
    redis = [name for name in claims if name.startswith("data-ai-infra-redis-cluster-")]
    assert len(redis) == 6  # every member of every data StatefulSet, at its configured size
    template = grown.get("StatefulSet", "ai-infra-patroni")["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_patroni_members_roll_when_a_planned_rotation_changes_their_credentials():
    def checksum(*overrides: str) -> str:
        template = objects("prod", *overrides).get("StatefulSet", "ai-infra-patroni")["spec"]["template"]
        return template["metadata"]["annotations"]["ai-infra-matrix/credentials-checksum"]

    assert checksum() != checksum("postgresPassword=a-new-password-1234567", "dataSafety.allowCredentialChange=true")
