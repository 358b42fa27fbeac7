"""README.zh-CN.md (the Simplified Chinese README) stays a faithful copy of README.md.

Prose is translated, so the tests compare what must not be: the heading structure (levels,
order, and the code in each title), the inline code (config keys, commands, names), the
fenced code blocks (copied verbatim; only `# comments` may be translated), the quick
start's set-up commands, and the generated config reference and outputs contract, whose
Chinese descriptions live in docs/i18n/zh-CN.yaml (every key and output must have one).

When the English README gains a section: translate it into README.zh-CN.md at the same
place (same heading level, same `code` in the title, code blocks copied), add the
descriptions of new keys/outputs to docs/i18n/zh-CN.yaml and run `make docs`.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from tests.conftest import ROOT
from tools import config_reference

LANG = "zh-CN"
EN = ROOT / "README.md"
ZH = ROOT / "README.zh-CN.md"
COMMAND_PREFIXES = ("make ", "pulumi ", "kubectl ", "python ", "tools/")


def _read(path) -> str:
    return path.read_text(encoding="utf-8")


def _split(text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """(prose with the fenced blocks removed, [(info string, lines) of each fenced block])."""
    prose: list[str] = []
    blocks: list[tuple[str, list[str]]] = []
    block: tuple[str, list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if block is None:
                block = (line[3:].strip(), [])
            else:
                blocks.append(block)
                block = None
        elif block is not None:
            block[1].append(line)
        else:
            prose.append(line)
    assert block is None, "unterminated fenced code block"
    return "\n".join(prose), blocks


def _code_spans(markdown: str) -> set[str]:
    """Inline `code` (a span may wrap over lines; whitespace normalised)."""
    return {" ".join(span.split()) for span in re.findall(r"`([^`]+)`", markdown)}


def headings(text: str) -> list[tuple[int, str]]:
    prose, _ = _split(text)
    return [(len(m[1]), m[2].strip()) for m in re.finditer(r"^(#{1,6}) +(.+)$", prose, flags=re.MULTILINE)]


def _strip_comment(line: str) -> str:
    return re.sub(r"(^|\s+)#.*$", "", line).rstrip()


def commands(text: str) -> list[str]:
    """The command lines of the fenced blocks, in order, comments stripped: in a block with
    a language (```bash) every line starting with a command, elsewhere (output, the layout
    tree) only a `$ ` prompt line."""
    found = []
    for info, lines in _split(text)[1]:
        for raw in lines:
            line = raw.strip()
            if line.startswith("$ ") or info:
                line = _strip_comment(line.removeprefix("$ "))
                if line.startswith(COMMAND_PREFIXES):
                    found.append(" ".join(line.split()))
    return found


def _key_paths() -> set[str]:
    """Every config key and secret key, and every contiguous dotted part of a config key
    (the README also says `synchronousMode`, `autoscaling.minReplicas`, `redisCluster.drain`)."""
    paths = {key for key, _ in config_reference.secret_rows()}
    for key, _ in config_reference.config_rows():
        parts = key.split(".")
        paths |= {".".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}
    return paths


def hand_written(text: str) -> str:
    """The prose without the generated sections (compared on their own below)."""
    for name in config_reference.SECTIONS:
        start, end = config_reference._bounds(text, name)
        text = text[:start] + text[end:]
    return _split(text)[0]


def config_keys(text: str) -> Counter[str]:
    """How often each config key is named in inline code in the hand-written prose (also
    as `ai-infra-matrix:KEY` or `KEY=value`)."""
    paths, found = _key_paths(), Counter[str]()
    for span in re.findall(r"`([^`]+)`", hand_written(text)):
        candidate = re.split(r"[=\s]", span.removeprefix("ai-infra-matrix:"), maxsplit=1)[0]
        if candidate in paths:
            found[candidate] += 1
    return found


def _section(text: str, title_index: int) -> str:
    """The body of the title_index-th level-2 section (by position, titles are translated)."""
    return re.split(r"^## .*$", text, flags=re.MULTILINE)[title_index + 1]


def _slug(title: str) -> str:
    """GitHub's anchor for a heading (CJK characters are kept)."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


@pytest.fixture(scope="module")
def en() -> str:
    return _read(EN)


@pytest.fixture(scope="module")
def zh() -> str:
    return _read(ZH)


def test_the_readmes_link_to_each_other(en, zh):
    before_first_section = {name: text.split("\n## ", 1)[0] for name, text in (("en", en), ("zh", zh))}
    assert "(README.zh-CN.md)" in before_first_section["en"], "README.md must link to README.zh-CN.md at the top"
    assert "(README.md)" in before_first_section["zh"], "README.zh-CN.md must link back to README.md at the top"


def test_heading_structure_matches(en, zh):
    en_headings, zh_headings = headings(en), headings(zh)
    en_shape = [(level, sorted(_code_spans(title))) for level, title in en_headings]
    zh_shape = [(level, sorted(_code_spans(title))) for level, title in zh_headings]
    for index, (english, chinese) in enumerate(zip(en_shape, zh_shape, strict=False)):
        assert english == chinese, (
            f"heading {index + 1} differs: README.md has {'#' * english[0]} {en_headings[index][1]!r}, "
            f"README.zh-CN.md has {'#' * chinese[0]} {zh_headings[index][1]!r} (same level and same `code` expected)"
        )
    assert len(en_shape) == len(zh_shape), (
        f"README.md has {len(en_shape)} headings, README.zh-CN.md {len(zh_shape)}: translate the missing sections "
        f"{[title for _, title in en_headings[len(zh_shape) :]]}"
    )


def test_the_same_config_keys_are_named(en, zh):
    en_keys, zh_keys = config_keys(en), config_keys(zh)
    assert en_keys, "no config key found in README.md"
    assert en_keys == zh_keys, (
        f"more often in README.md: {dict(en_keys - zh_keys)}; more often in README.zh-CN.md: {dict(zh_keys - en_keys)}"
    )


def test_the_same_inline_code_is_used(en, zh):
    """Identifiers, keys, commands and names stay in their English (code) form."""
    en_spans, zh_spans = _code_spans(hand_written(en)), _code_spans(hand_written(zh))
    assert en_spans == zh_spans, (
        f"only in README.md: {sorted(en_spans - zh_spans)}; only in README.zh-CN.md: {sorted(zh_spans - en_spans)}"
    )


def test_the_same_commands_are_listed(en, zh):
    assert commands(en) == commands(zh)


def test_code_blocks_are_copied_verbatim(en, zh):
    """Same blocks in the same order; bash/python blocks identical but for `# comments`
    (blocks without a language, such as the layout tree, may be translated)."""
    en_blocks, zh_blocks = _split(en)[1], _split(zh)[1]
    assert [info for info, _ in en_blocks] == [info for info, _ in zh_blocks]
    for (info, en_lines), (_, zh_lines) in zip(en_blocks, zh_blocks, strict=True):
        if info:
            assert [_strip_comment(line) for line in en_lines] == [_strip_comment(line) for line in zh_lines]


def test_quick_start_set_up_commands_are_identical(en, zh):
    index = next(i for i, (level, title) in enumerate(t for t in headings(en) if t[0] == 2) if title == "Quick start")

    def set_up(text: str) -> list[str]:
        section = _section(text, index)
        block = section.split("```bash", 1)[1].split("```", 1)[0]
        return [_strip_comment(line).strip() for line in block.strip().splitlines()]

    assert set_up(en) == set_up(zh) == ["make up STACK=dev", "make test"]


@pytest.mark.parametrize("path", [EN, ZH], ids=["en", "zh-CN"])
def test_internal_links_resolve(path):
    text = _read(path)
    anchors = {_slug(title) for _, title in headings(text)}
    for target in re.findall(r"\]\(#([^)]+)\)", _split(text)[0]):
        assert target in anchors, f"{path.name}: link to #{target} matches no heading"


def test_every_key_secret_and_output_is_translated():
    missing = config_reference.untranslated(LANG)
    assert not missing, f"add Chinese descriptions to docs/i18n/{LANG}.yaml, then run `make docs`: {missing}"


def test_no_translation_is_left_over():
    """Entries for keys that no longer exist, or shared texts no key uses (its English
    description changed: translate the new text)."""
    from platform_stack import OUTPUTS

    texts = config_reference.translations(LANG)
    rows = config_reference.config_rows()
    assert set(texts["keys"]) <= {key for key, _ in rows}, set(texts["keys"]) - {key for key, _ in rows}
    assert set(texts["shared"]) <= {english for _, english in rows}, set(texts["shared"]) - {e for _, e in rows}
    assert set(texts["secrets"]) <= {key for key, _ in config_reference.secret_rows()}
    assert set(texts["outputs"]) <= set(OUTPUTS)


def test_the_texts_and_table_headers_are_translated():
    data = yaml.safe_load((config_reference.I18N / f"{LANG}.yaml").read_text(encoding="utf-8"))
    for part in ("text", "headers"):
        assert set(data[part]) == set(config_reference.ENGLISH[part]), f"{part}: one entry per English text"
        untranslated = [name for name, value in data[part].items() if value == config_reference.ENGLISH[part][name]]
        assert not untranslated, f"{part}: {untranslated} still in English"
    assert "`{project}:`" in data["text"]["namespace"]


def test_translations_keep_the_code_of_the_english_descriptions():
    texts = config_reference.translations(LANG)
    for key, english in config_reference.config_rows():
        chinese = texts["keys"].get(key) or texts["shared"].get(english) or ""
        assert _code_spans(english) <= _code_spans(chinese), f"{key}: keep {sorted(_code_spans(english))} in Chinese"


@pytest.mark.parametrize("name", sorted(config_reference.SECTIONS))
def test_generated_sections_are_up_to_date(name, zh):
    assert config_reference.section(zh, name) == config_reference.SECTIONS[name](LANG), (
        f"README.zh-CN.md section {name!r} is stale: run `make docs`"
    )
