"""The representative changes of tests/e2e/test_data_safety.py, checked offline: each one
is a valid prod config (or refused by the settings rule it names), each batch too, and
every key of the config reference has one. The engine is only asked about changes that
could reach it."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SECRET_KEYS, SettingsError, load_settings
from settings.defaults import deep_merge
from tests.e2e.data_safety_changes import NOT_IN_RENDER_MODE, SETTINGS_REFUSED, STACK, as_config, batches, changes
from tools.config_reference import config_rows

DEPLOYED = {"profile": "prod", "namespace": "ai-infra-prod"}  # what Pulumi.prod.yaml sets


def _problems(values: dict[str, Any]) -> str:
    try:
        load_settings(deep_merge(DEPLOYED, as_config(values)), stack=STACK, secret_keys=set(SECRET_KEYS))
    except SettingsError as error:
        return str(error)
    return ""


def test_every_key_has_a_change():
    keys = {change.key for change in changes()} | set(NOT_IN_RENDER_MODE)
    assert keys == {key for key, _ in config_rows()} | set(SECRET_KEYS)


@pytest.mark.parametrize("change", changes(), ids=lambda change: change.key)
def test_each_change_is_valid_or_refused_by_its_rule(change):
    problems = _problems(change.values)
    if change.key in SETTINGS_REFUSED:
        assert change.refused_by in problems
    else:
        assert not problems, f"{change.key}: {change.values} is not a valid prod config:\n{problems}"


def test_each_batch_is_a_valid_config_and_changes_each_key_once():
    for batch in batches(changes()):
        assert not _problems(batch.values), batch.keys
        assert len(batch.keys) == len(set(batch.keys))
        assert not any(change.alone or change.refused_by for change in batch.changes)
