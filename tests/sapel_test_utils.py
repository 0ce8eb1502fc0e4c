"""Helpers shared by test modules (pytest puts tests/ on sys.path for its conftest)."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc


def doc_with_ents(nlp: Language, text: str, spans) -> Doc:
    """A doc of ``text`` whose entities are ``spans``: (substring, label) pairs,
    found left to right."""
    doc = nlp.make_doc(text)
    ents, pos = [], 0
    for sub, label in spans:
        start = text.index(sub, pos)
        pos = start + len(sub)
        ents.append(doc.char_span(start, pos, label=label))
    doc.ents = ents
    return doc


def linker_nlp(linker_kb, *, initialize: bool = False, **config) -> Language:
    """A blank English pipeline with one ``sapel_linker`` (``config``) on ``linker_kb``:
    set directly, or through the component's ``initialize`` (which also builds what
    the config needs, e.g. a sparse index for ``sparse_weight``)."""
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("sapel_linker", config=config)
    if initialize:
        linker.initialize(kb_loader=lambda: linker_kb)
    else:
        linker.set_kb(lambda: linker_kb)
    return nlp


def child_venv(env_dir: Path) -> Path:
    """A fresh virtualenv at ``env_dir`` that also sees this interpreter's packages;
    returns its python.

    ``venv``'s ``system_site_packages`` would add the *base* interpreter's packages,
    which lack what a virtualenv or conda env running the tests holds. Instead a
    ``.pth`` file adds this interpreter's site directories after the new env's own
    (with ``site.addsitedir``, so that their ``.pth`` files, editable installs
    included, work): whatever is installed into the new env comes first."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    dirs = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    lines = [f"import site; site.addsitedir({d!r})" for d in dict.fromkeys(dirs) if Path(d).is_dir()]
    assert lines, f"no site-packages found for {sys.executable}"
    (Path(purelib) / "_sapel_parent_env.pth").write_text("\n".join(lines) + "\n", encoding="utf8")
    return python


#: Mention-like names of several lengths, for encoder and runtime tests.
ENCODER_TEST_NAMES = [
    "heart attack",
    "myocardial infarction",
    "chronic kidney failure",
    "flu",
    "type 2 diabetes with high blood sugar and kidney disease",
    "wilson disease",
    "a",
    "migraine headache",
]

#: A toy vocabulary for the training tests: a key word per concept in every name, and
#: filler shared across concepts, so an untrained encoder confuses concepts and
#: training must learn to attend to the key words.
TOY_KEYS = ["headache", "influenza", "asthma", "migraine", "diabetes", "fever", "tumor", "cancer"]
TOY_TEMPLATES = [
    "{k}", "acute {k}", "chronic {k} syndrome", "the {k} disease", "{k} of the heart",
    "{k} in the liver", "type 2 {k} pain", "low blood {k}", "high {k} failure",
]
TOY_CONCEPTS = {
    f"C{i}": [t.format(k=k) for t in TOY_TEMPLATES[i:] + TOY_TEMPLATES[:i]]
    for i, k in enumerate(TOY_KEYS)
}


def dead_pid() -> int:
    """A PID with no running process."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1
