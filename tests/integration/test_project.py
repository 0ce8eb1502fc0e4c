"""The project's demo workflow through spaCy's project API (weasel), on a copy of the
project with a tiny local BERT as the KB encoder; then the packaged pipeline installs
from its wheel into a fresh virtualenv (offline) and loads by name."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import spacy
import srsly
from sapel_test_utils import child_venv
from spacy.tokens import DocBin
from weasel.cli.run import project_run
from weasel.util import load_project_config

ROOT = Path(__file__).parents[2]
FAST_CORE = ["demo-corpus", "demo-kb", "demo-train", "demo-assemble", "demo-evaluate", "demo-visualize"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PIP_NO_INDEX": "1"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_bert_dir):
    """A copy of the project in which the demo workflow's fast core has run."""
    path = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", path)
    shutil.copytree(ROOT / "configs", path / "configs")
    (path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "make_demo_corpus.py", path / "scripts")
    shutil.copytree(ROOT / "spacy_sapel" / "example", path / "spacy_sapel" / "example")
    overrides = {"vars.encoder": str(tiny_bert_dir), "vars.demo_steps": 150, "vars.package_name": "sapel_test"}
    old_env = dict(os.environ)
    os.environ.update({k: v for k, v in OFFLINE.items() if k != "PIP_NO_INDEX"})
    try:
        for command in FAST_CORE:
            project_run(path, command, overrides=overrides, capture=True)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    return path, overrides


def test_project_declares_the_workflows_and_commands():
    config = srsly.read_yaml(ROOT / "project.yml")
    commands = {c["name"]: c for c in config["commands"]}
    assert set(FAST_CORE) <= set(config["workflows"]["demo"])
    assert config["workflows"]["all"][:5] == ["convert", "pretrain-sap", "finetune-sap", "build-kb", "train-ner"]
    for name in config["workflows"]["demo"] + config["workflows"]["all"]:
        assert {"help", "script", "deps", "outputs"} <= set(commands[name]), name
        assert not any(o.startswith("scripts/") for o in commands[name]["outputs"])
    for asset in config["assets"]:
        assert asset.get("checksum") and asset.get("description"), asset["dest"]


def test_variables_keep_every_list_item():
    """weasel joins a list whose first item holds two ${vars...} into one string (a
    dependency "a.gz, b.txt" that never exists): every script, deps and outputs list
    must keep its length once the variables are filled in."""
    raw = {c["name"]: c for c in srsly.read_yaml(ROOT / "project.yml")["commands"]}
    loaded = load_project_config(ROOT, overrides={"vars.data_dir": "/data", "vars.gpu_id": 0})
    for command in loaded["commands"]:
        for key in ("script", "deps", "outputs"):
            items = command.get(key, [])
            assert len(items) == len(raw[command["name"]].get(key, [])), (command["name"], key)
            assert not any("${" in item for item in items), (command["name"], key)


def test_demo_workflow_trains_links_scores_and_draws(project):
    path, _ = project
    metrics = json.loads((path / "metrics" / "demo.json").read_text())
    assert metrics["docs"] == 8 and metrics["gold_ents"] == 22
    assert set(metrics["ner"]) == {"p", "r", "f", "per_type"}
    assert "DISEASE" in metrics["ner"]["per_type"]
    assert metrics["linking"]["sapel_linker"]["mentions"] > 0
    assert {"p", "r", "f"} <= set(metrics["joint"])
    assert metrics["speed"]["words_per_second"] > 0
    html = (path / "visualize" / "demo.html").read_text()
    assert "<mark" in html and "DISEASE" in html
    lock = srsly.read_yaml(path / "project.lock")
    assert set(FAST_CORE) <= set(lock)


def test_demo_training_corpus_varies_what_the_ner_must_learn(project):
    """The synthetic sentences hold short forms defined in parentheses, coordinated
    names and plain noun phrases next to names, and none of the example texts the demo
    is scored on."""
    path, _ = project
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(path / "corpus" / "demo_train.spacy").get_docs(nlp.vocab))
    ents = [ent for doc in docs for ent in doc.ents]
    assert ents and all(ent.kb_id_ and ent.label_ == "DISEASE" for ent in ents)
    assert not any(c in ent.text for ent in ents for c in "();,")
    in_parens = [e for e in ents if 0 < e.start and e.end < len(e.doc)
                 and e.doc[e.start - 1].text == "(" and e.doc[e.end].text == ")"]
    assert len(in_parens) >= 10
    coordinated = [(a, b) for doc in docs for a, b in zip(doc.ents, doc.ents[1:])
                   if b.start == a.end + 1 and doc[a.end].text in {"and", "or"}]
    assert len(coordinated) >= 10
    # words that only occur outside entities: modifiers and negative noun phrases
    inside = {t.lower_ for ent in ents for t in ent}
    outside = {t.lower_ for doc in docs for t in doc if not t.ent_type_}
    assert {"severe", "metabolism", "patients"} <= outside - inside
    examples = [json.loads(line)["text"] for line in
                (ROOT / "spacy_sapel" / "example" / "texts.jsonl").read_text().splitlines() if line.strip()]
    assert not any(example in doc.text for doc in docs for example in examples)


def test_demo_package_installs_from_its_wheel_offline_and_loads_by_name(project, tmp_path):
    path, overrides = project
    project_run(path, "demo-package", overrides=overrides, capture=True)
    wheels = list((path / "packages" / "wheels").glob("en_sapel_test-*.whl"))
    assert len(wheels) == 1
    env_dir = tmp_path / "venv"
    python = str(child_venv(env_dir))
    env = {**os.environ, **OFFLINE}
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheels[0])],
        check=True, env=env, capture_output=True,
    )
    code = (
        "import spacy, json; nlp = spacy.load('en_sapel_test'); "
        "doc = nlp('An acute heart attack and type 2 diabetes.'); "
        "print(json.dumps({'file': spacy.util.get_package_path('en_sapel_test').as_posix(), "
        "'spacy': spacy.__file__, "
        "'pipes': nlp.pipe_names, 'ents': [[e.text, e.kb_id_] for e in doc.ents]}))"
    )
    out = subprocess.run([python, "-c", code], check=True, env=env, capture_output=True, text=True, cwd=tmp_path)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(env_dir.as_posix())
    # spaCy comes from the environment running the tests, not the base interpreter's
    assert Path(result["spacy"]) == Path(spacy.__file__)
    assert result["pipes"] == ["embed", "ner", "sapel_abbreviation_ents", "sapel_linker"]
    meta = json.loads(next((path / "packages").glob("en_sapel_test-*/meta.json")).read_text())
    assert any(req.startswith("spacy-sapel") for req in meta["requirements"])


def test_project_scripts_use_options_the_commands_have():
    """Every ``python -m spacy_sapel CMD --option`` in project.yml names an option CMD
    declares (a typo would only show when the real-data workflow runs); pretrain-sap's
    dotted config overrides are checked by the next test."""
    import shlex

    import typer

    from spacy_sapel.cli import app

    group = typer.main.get_command(app)
    config = srsly.read_yaml(ROOT / "project.yml")
    checked = 0
    for command in config["commands"]:
        for line in command["script"]:
            words = shlex.split(line)
            if words[1:3] != ["-m", "spacy_sapel"]:
                continue
            sub = group.commands[words[3]]
            declared = {opt for param in sub.params for opt in (*param.opts, *param.secondary_opts)}
            for word in words[4:]:
                if word.startswith("--") and not (words[3] == "pretrain-sap" and "." in word):
                    assert word in declared, (command["name"], word)
            checked += 1
    assert checked >= 10


def test_project_sap_steps_override_settings_their_configs_have():
    """pretrain-sap's dotted overrides in project.yml name [paths] of the config,
    arguments of sapel.pretrain_sap.v1 or fields of its training config."""
    import inspect
    import shlex
    from dataclasses import fields

    from spacy.cli._util import parse_config_overrides

    from spacy_sapel.sap.config import load_sap_config
    from spacy_sapel.sap.recipe import create_sap_pretrainer, training_config

    loaded = load_project_config(ROOT, overrides={"vars.data_dir": "/data"})
    lines = [shlex.split(line) for c in loaded["commands"] for line in c["script"]]
    runs = [words for words in lines if words[1:4] == ["-m", "spacy_sapel", "pretrain-sap"]]
    assert len(runs) == 2
    arguments = set(inspect.signature(create_sap_pretrainer).parameters)
    for words in runs:
        overrides = parse_config_overrides(words[6:], env_var=None)
        config = load_sap_config(ROOT / words[4], overrides)
        training = {f.name for f in fields(training_config(config["sap"]["objective"]))}
        for key in overrides:
            section, name = key.split(".", 1)
            if section == "paths":
                assert name in config["paths"], key
            elif name.startswith("training."):
                assert name.split(".", 1)[1] in training, key
            else:
                assert section == "sap" and name in arguments, key


def test_project_spacy_train_overrides_name_settings_their_configs_have():
    """``spacy train`` accepts an override of a setting its config lacks (a typo is
    added as a new key, and fails late or never): every one in project.yml exists."""
    import shlex

    from spacy.util import load_config

    loaded = load_project_config(ROOT, overrides={"vars.data_dir": "/data"})
    lines = [shlex.split(line) for c in loaded["commands"] for line in c["script"]]
    runs = [words for words in lines if words[1:4] == ["-m", "spacy", "train"]]
    assert len(runs) >= 3
    checked = set()
    for words in runs:
        config = load_config(ROOT / words[4], interpolate=False)
        flags = words[5::2]
        assert len(words[5:]) == 2 * len(flags), words  # flag value pairs
        for flag in flags:
            assert flag.startswith("--"), (words, flag)
            if flag in ("--output", "--gpu-id"):
                continue
            section = config
            *parents, name = flag[2:].split(".")
            assert parents, (words[4], flag)
            for parent in parents:
                assert parent in section, (words[4], flag)
                section = section[parent]
            assert name in section, (words[4], flag)
            checked.add(flag)
    assert {"--training.max_steps", "--components.transformer.model.mixed_precision"} <= checked
