"""Every name declared as an entry point resolves, and code and metadata agree."""
from __future__ import annotations

import configparser
from pathlib import Path

import pytest
import spacy
from spacy.util import registry

import spacy_sapel  # noqa: F401

SETUP_CFG = Path(__file__).parent.parent.parent / "setup.cfg"
GROUPS = {
    "spacy_factories": None,
    "spacy_misc": registry.misc,
    "spacy_scorers": registry.scorers,
    "spacy_readers": registry.readers,
    "spacy_architectures": registry.architectures,
    "spacy_tokenizers": registry.tokenizers,
}


def declared_entry_points():
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    section = parser["options.entry_points"]
    for group in GROUPS:
        for line in section.get(group, "").strip().splitlines():
            name, _, target = (part.strip() for part in line.partition("="))
            yield group, name, target


ENTRY_POINTS = list(declared_entry_points())


def test_entry_points_are_declared():
    groups = {group for group, _, _ in ENTRY_POINTS}
    assert {"spacy_factories", "spacy_misc", "spacy_scorers"} <= groups


@pytest.mark.parametrize("group,name,target", ENTRY_POINTS, ids=[n for _, n, _ in ENTRY_POINTS])
def test_entry_point_resolves_to_the_registered_function(group, name, target):
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    func = getattr(module, attr)
    assert name.startswith("sapel")
    if group == "spacy_factories":
        assert spacy.Language.has_factory(name)
        assert spacy.Language.get_factory_meta(name).factory == name
    else:
        assert GROUPS[group].get(name) is func


def test_every_sapel_registration_is_declared():
    """Code cannot register a name that the package metadata forgets."""
    declared = {name for _, name, _ in ENTRY_POINTS}
    for group, reg in GROUPS.items():
        if reg is None:
            continue
        registered = {name for name in reg.get_all() if name.startswith("sapel.")}
        assert registered <= declared, f"{group}: {registered - declared} not in setup.cfg"
