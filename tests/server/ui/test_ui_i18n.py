"""The UI catalogues: both languages complete, every key the templates use present."""

from __future__ import annotations

import re
from enum import Enum

import pytest

from sitewatch.contract.events import HelmetColour, HelmetState, RuleKind, Severity
from sitewatch.server.db.models import DismissReason, HazardStatus, ReviewStatus
from sitewatch.server.ui.i18n import CATALOGUES, EN, ZH, label, translator
from sitewatch.server.ui.rendering import TEMPLATE_DIR

TEMPLATE_KEY = re.compile(r"""\bt\(\s*['"]([a-z_.]+)['"]""")


def test_both_languages_have_the_same_keys() -> None:
    assert set(ZH) == set(EN), sorted(set(ZH) ^ set(EN))


def test_every_key_used_by_a_template_exists() -> None:
    used = {
        key
        for path in TEMPLATE_DIR.glob("*.html")
        for key in TEMPLATE_KEY.findall(path.read_text(encoding="utf-8"))
    }
    assert len(used) > 50
    assert used <= set(ZH), sorted(used - set(ZH))


@pytest.mark.parametrize(
    ("group", "enum"),
    [
        ("rule", RuleKind),
        ("severity", Severity),
        ("reason", DismissReason),
        ("helmet", HelmetState),
        ("colour", HelmetColour),
        ("status", ReviewStatus),
        ("status", HazardStatus),
    ],
)
def test_every_enum_value_has_a_label(group: str, enum: type[Enum]) -> None:
    zh = translator("zh")
    for member in enum:
        for catalogue in CATALOGUES.values():
            assert f"{group}.{member.value}" in catalogue
        assert label(zh, group, member) != member.value


def test_chinese_is_the_default_and_unknown_values_pass_through() -> None:
    t = translator("xx")
    assert t("verdict.confirm") == "确认隐患"
    assert t("verdict.dismiss") == "误报"
    assert label(t, "rule", "some_new_rule") == "some_new_rule"
    assert label(t, "rule", None) == "—"
    assert translator("en")("events.total", n=3) == "3 in total"
