"""Day-2 on the deployed prod stack, as the README's "Upgrades and rollback" tells it:
an image tag change of the three data systems by `pulumi up`, under writers of all three,
then `pulumi stack history` and a rollback by re-applying the previous config; and the
destroy that keeps the data, found again by the next `up`.

The new tag is the same image pushed again under another name (`<tag>-day2`): what
is measured is the roll itself, not a new version of the software. During each roll:

- every member restarts once, one at a time (the PDBs, the StatefulSets' rolling updates
  and Patroni's roll Job);
- Patroni: the leader moves exactly once (a poll of the role=primary label each second):
  the roll Job restarts the replicas, switches over to an updated synchronous standby and
  restarts the old leader last;
- Redis: a master's preStop hands its slots to its replica before it stops;
- Kafka: controlled shutdown moves partition leadership before a broker stops;
- no acknowledged write is lost, in any of the three systems.

Minutes (every data pod restarts twice), so `make drills` runs it (AI_INFRA_DRILL_NODES=1)
and CI does not. The stack's config is put back whatever happened."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from tests.conformance import report
from tests.deployed import Deployed, stack_run
from tests.prod import drills
from tests.prod.conftest import STACK
from tests.prod.stack_changes import LOCAL_STACK_FILE, record, remove_key, set_key, up
from tools.cluster.images import buildah, project_images

pytestmark = pytest.mark.skipif(
    os.environ.get("AI_INFRA_DRILL_NODES") != "1", reason="day-2 drills run from `make drills` (AI_INFRA_DRILL_NODES=1)"
)
# config key of each data system's image -> its image's title, and the StatefulSets it rolls
ROLLED = {
    "patroni.image.tag": ("ai-infra-patroni", (drills.PATRONI,)),
    "redisCluster.image.tag": ("ai-infra-redis", (drills.REDIS,)),
    "kafka.image.tag": ("ai-infra-kafka", (drills.KAFKA, drills.KAFKA_CONTROLLER)),
}
SUFFIX = "-day2"
WRITER_SECONDS = 1800  # an upper bound: the writers stop when the roll is over


def _watch_leaders(prod: Deployed, leaders: list[str]) -> drills.Watch:
    """The Patroni leader (the pod labelled role=primary) looked up every second: each
    distinct leader in turn appended to ``leaders`` (which starts with the current one)."""
    leaders.append(drills.patroni_leader(prod))

    def look() -> None:
        try:
            pods = prod.pods("-l", "role=primary")
        except AssertionError:
            return
        if len(pods) == 1 and pods[0]["metadata"]["name"] != leaders[-1]:
            leaders.append(pods[0]["metadata"]["name"])

    return drills.Watch(look, 1)


def _push_retagged(prod: Deployed) -> dict[str, str]:
    """Each rolled image pushed to the cluster's registry again as <tag>-day2; key -> new tag."""
    by_title = {image.repository: image for image in project_images()}
    tags = {}
    for key, (title, _) in ROLLED.items():
        image = by_title[title]
        target = f"127.0.0.1:{prod.cluster.info.registry_port}/{image.repository}:{image.tag}{SUFFIX}"
        buildah("push", "--tls-verify=false", image.ref, f"docker://{target}")
        tags[key] = f"{image.tag}{SUFFIX}"
    return tags


def _images(prod: Deployed, statefulset: str) -> set[str]:
    """The images the StatefulSet's pods run (their first container)."""
    pods = [p for p in prod.pods() if p["metadata"]["name"].rsplit("-", 1)[0] == statefulset]
    return {p["spec"]["containers"][0]["image"] for p in pods}


def _history() -> list[dict[str, object]]:
    result = stack_run("pulumi", STACK, "stack", "history", "--json", "--show-secrets=false")
    assert result.returncode == 0, result.stderr[-3000:]
    entries: list[dict[str, object]] = json.loads(result.stdout)
    return entries


def _roll(prod: Deployed, change: str, set_values: dict[str, str] | None, original: str) -> None:
    """One roll under writers of the three systems: ``set_values`` by `pulumi config set`,
    or (None) the previous config put back, then `pulumi up`; recorded in the table."""
    pod = drills.writer_pod(prod)
    writers = [drills.Writer(prod, system, WRITER_SECONDS, pod) for system in ("postgres", "redis", "kafka")]
    for writer in writers:
        writer.steady()
    leaders: list[str] = []
    watch = _watch_leaders(prod, leaders)
    fault = time.time()
    try:
        if set_values is None:
            LOCAL_STACK_FILE.write_text(original)
        else:
            for key, value in set_values.items():
                set_key(key, value)
        took = up()
        drills.wait_healthy(prod)
    finally:
        watch.finish()
        for writer in writers:
            writer.stop()  # the change is over: the writers read back what they wrote
    results = [writer.finish() for writer in writers]
    for writes in results:
        record(f"{change}: {writes.system}", [took], writes, fault)
    report.measurement("prod-day2", change=change, leaders=leaders)
    print(f"{change}: Patroni leaders in order {leaders}")
    for writes in results:
        assert writes.lost == 0, (writes.system, writes.summary)
    assert len(leaders) == 2, f"the Patroni leader moved {len(leaders) - 1} times, not once: {leaders}"


def test_an_image_tag_change_rolls_every_member_and_a_rollback_restores_it(prod: Deployed, config_restored: None) -> None:
    drills.wait_healthy(prod)
    original = LOCAL_STACK_FILE.read_text()
    before = {sts: _images(prod, sts) for _, statefulsets in ROLLED.values() for sts in statefulsets}
    assert all(len(images) == 1 for images in before.values()), before
    earlier = _history()
    newest = str(earlier[0]["startTime"]) if earlier else ""
    tags = _push_retagged(prod)

    _roll(prod, "image tags -> <tag>-day2", tags, original)
    for key, (_, statefulsets) in ROLLED.items():
        for statefulset in statefulsets:
            (image,) = _images(prod, statefulset)
            assert image.endswith(f":{tags[key]}"), (statefulset, image)

    _roll(prod, "rollback (previous config, pulumi up)", None, original)
    after = {sts: _images(prod, sts) for sts in before}
    assert after == before, after
    # (the history lists the newest first, 10 a page: the entries since the newest before)
    entries = [e for e in _history() if str(e["startTime"]) > newest]
    assert [(e.get("kind"), e.get("result")) for e in entries] == [("update", "succeeded")] * 2, entries


def _marked(prod: Deployed, marker: str) -> dict[str, bool]:
    """Whether each data system holds the marker written by _mark."""
    leader = drills.patroni_leader(prod)
    code, rows = prod.exec(leader, "psql -U postgres -d postgres -Atc 'SELECT marker FROM ai_infra_day2_probe'")
    _, value = prod.exec(f"{drills.REDIS}-0", f"redis-cli -c get ai-infra-day2:{marker}", container="redis")
    consume = (f"kafka-console-consumer.sh --bootstrap-server {drills.BOOTSTRAP} --topic ai-infra-day2-probe "
               "--from-beginning --max-messages 1 --timeout-ms 30000")  # fmt: skip
    _, message = prod.exec(f"{drills.KAFKA}-0", consume)
    return {"postgres": code == 0 and marker in rows, "redis": marker in value, "kafka": marker in message}


def _mark(prod: Deployed, marker: str) -> None:
    leader = drills.patroni_leader(prod)
    sql = f"CREATE TABLE IF NOT EXISTS ai_infra_day2_probe (marker text); INSERT INTO ai_infra_day2_probe VALUES ('{marker}')"
    code, out = prod.exec(leader, f'psql -U postgres -d postgres -c "{sql}"')
    assert code == 0, out
    code, out = prod.exec(f"{drills.REDIS}-0", f"redis-cli -c set ai-infra-day2:{marker} {marker}", container="redis")
    assert code == 0 and "OK" in out, out
    produce = (f"kafka-topics.sh --bootstrap-server {drills.BOOTSTRAP} --create --if-not-exists --topic ai-infra-day2-probe "
               f"--partitions 1 --replication-factor 3 && echo {marker} | kafka-console-producer.sh --bootstrap-server "
               f"{drills.BOOTSTRAP} --topic ai-infra-day2-probe --producer-property acks=all")  # fmt: skip
    code, out = prod.exec(f"{drills.KAFKA}-0", produce)
    assert code == 0, out


def test_a_destroy_keeps_the_data_and_a_new_up_finds_it(prod: Deployed, config_restored: None) -> None:
    """The README's prod destroy: dataSafety.protect=false and an up (the data
    StatefulSets stop orphaning their pods), `make destroy` (volumes, namespace and the
    protected generators stay), then the config as it was and `make up`: the same
    passwords, the same Kafka cluster ID, and the row, the key and the message written
    before are there."""
    drills.wait_healthy(prod)
    marker = uuid.uuid4().hex
    _mark(prod, marker)
    claims = {c["metadata"]["name"] for c in prod.cluster.get("-n", prod.namespace, "pvc")["items"]}
    set_key("dataSafety.protect", False)
    up()
    destroyed = stack_run("destroy", STACK, env={"YES": "1"})
    assert destroyed.returncode == 0, (destroyed.stdout + destroyed.stderr)[-4000:]
    left = prod.cluster.get("-n", prod.namespace, "statefulsets,deployments")["items"]
    # the workloads' pods stop in their own time (Patroni's grace period is minutes)
    prod.cluster.wait("the destroyed stack's pods to stop", lambda: not prod.pods(), timeout=600, interval=5)
    kept = {c["metadata"]["name"] for c in prod.cluster.get("-n", prod.namespace, "pvc")["items"]}
    remove_key("dataSafety.protect")
    took = up()
    assert not left, [f"{o['kind']} {o['metadata']['name']}" for o in left]
    assert claims <= kept, f"the destroy removed claims {sorted(claims - kept)}"
    drills.wait_healthy(prod)
    found = _marked(prod, marker)
    print(f"destroy kept {len(kept)} claims; the new up took {took:.1f} s and found {found}")
    assert all(found.values()), found
