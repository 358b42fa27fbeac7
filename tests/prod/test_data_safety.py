"""No config change destroys or stops a data system by surprise, against the prod stack
deployed for real: the e2e tier's representative changes (tests/e2e/data_safety_changes.py)
previewed by the real engine against the real API server, whose server-side dry run also
judges every planned update (an update the API server would refuse, such as a change of a
StatefulSet's immutable fields, fails here and not at `up`).

Every change that must plan safely is previewed (in the e2e tier's batches); of the
refused changes, one per lock (the refusal is the lock's, whatever the key). The keys the
tracked stack file sets are left to the e2e tier (see _tracked_keys). The stack's config
stays as it is: each preview has a copy of its own."""

from __future__ import annotations

from typing import Any

from settings.stack_file import read_document
from tests.deployed import Deployed, stack_run
from tests.e2e.data_safety_changes import Change, Previewed, changes, config_copy, config_text, judge, previewed
from tests.prod.conftest import STACK
from tests.prod.stack_changes import LOCAL_STACK_FILE
from tools.cluster import layout


def _preview(values: dict[str, Any], secrets: frozenset[str]) -> Previewed:
    """Preview ``values`` over the deployed config, in a copy of the stack file made for
    this preview (previews run side by side; the stack file stays as it is)."""
    with config_copy(LOCAL_STACK_FILE) as copy:
        arguments = []
        for key, value in values.items():
            arguments += ["--secret" if key in secrets else "--plaintext", f"ai-infra-matrix:{key}={config_text(value)}"]
        own = {"AI_INFRA_STACK_FILE": str(copy)}
        set_all = stack_run("pulumi", STACK, "config", "set-all", "--path", *arguments, env=own)
        assert set_all.returncode == 0, set_all.stderr[-3000:]
        result = stack_run("preview", STACK, "--json", timeout=900, env=own)
    return previewed(result.returncode, result.stdout, result.stderr)


def _tracked_keys() -> set[str]:
    """The keys Pulumi.prod.yaml sets (profile, namespace): tools/stack.sh brings them from
    git before every run, so a `config set` of them never reaches the engine here (the e2e
    tier previews them)."""
    config = read_document(layout.REPO / f"Pulumi.{STACK}.yaml").get("config") or {}
    return {key.removeprefix("ai-infra-matrix:") for key in config}


def _one_per_lock(every: list[Change]) -> list[Change]:
    tracked = _tracked_keys()
    usable = [change for change in every if not set(change.values) & tracked]
    chosen: dict[str, Change] = {}
    for change in usable:
        if change.refused_by and change.refused_by not in chosen:
            chosen[change.refused_by] = change
    return [change for change in usable if not change.refused_by] + list(chosen.values())


def test_no_config_change_replaces_or_deletes_a_data_object_of_the_deployed_stack(prod: Deployed) -> None:
    selected = _one_per_lock(changes())
    failures, refused = judge(_preview, selected)
    print("\nrefused against the deployed prod stack (key: refusal):")
    for key, by in sorted(refused.items()):
        print(f"  {key}: {by}")
    assert not failures, "\n\n".join(failures)
    assert len(refused) == len({change.refused_by for change in selected if change.refused_by})
    # and nothing of it stayed: the deployed stack still plans no change
    check = stack_run("preview", STACK, "--expect-no-changes")
    assert check.returncode == 0, (check.stdout + check.stderr)[-3000:]
