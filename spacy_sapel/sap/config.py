"""SAP training driven by a config file, as ``spacy train`` is: a ``[sap]`` block that
names ``sapel.pretrain_sap.v1``, ``[paths]`` filled on the command line, dotted
overrides. The filled config (every default written out) is saved as
``OUTPUT/config.cfg`` before training, and ``resume`` compares it with the new one."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple, Union

from spacy.util import load_config, registry
from thinc.api import Config, ConfigValidationError

from ..errors import Errors, SapelError
from ..util import PathLike, atomic_write_bytes
from .loop import check_sap_output
from .recipe import SapRun, training_config
from .retrieval import RetrievalResult
from .trainer import SapResult

#: the filled config a run saves next to its checkpoint
CONFIG_FILE = "config.cfg"
#: the block of a SAP config that names the recipe
SECTION = "sap"


def load_sap_config(path: PathLike, overrides: Optional[Dict[str, Any]] = None) -> Config:
    """The config at ``path`` with ``overrides`` (``{"paths.kb": ..., "sap.training.lr":
    ...}``, as :func:`spacy.cli._util.parse_config_overrides` gives them), not yet
    interpolated. A config that cannot be read, an override of a block the config
    lacks and a config without a ``[sap]`` block are refused (E632, E633)."""
    try:
        config = load_config(path, overrides=dict(overrides or {}), interpolate=False)
    except ConfigValidationError as err:
        raise SapelError(Errors.E632.format(path=path, problems=_problems(err))) from err
    if SECTION not in config:
        raise SapelError(Errors.E633.format(path=path))
    return config


def resolve_sap_config(config: Config, *, path: PathLike = "config") -> Tuple[SapRun, Config]:
    """The recipe's ``run`` function and the filled, interpolated config: every
    argument of ``sapel.pretrain_sap.v1`` and every training setting written out with
    its default. An empty ``[paths]`` value that ``[sap]`` uses (E634), an unknown
    argument or a value of the wrong type (E632), an unknown training setting (E630,
    E631) and an input path that does not exist (E637) are refused here, before any
    data is read."""
    for name, value in config.get("paths", {}).items():
        if value is None:
            for key in _keys_using(config[SECTION], f"${{paths.{name}}}", prefix=SECTION):
                raise SapelError(Errors.E634.format(path=path, name=name, key=key))
    try:
        filled = registry.fill(config.interpolate())
        block = filled[SECTION]
        settings = training_config(block["objective"], block.get("training") or {})
        block["training"] = asdict(settings)
        run = registry.resolve(filled)[SECTION]
    except ConfigValidationError as err:
        raise SapelError(Errors.E632.format(path=path, problems=_problems(err))) from err
    return run, filled


def config_changes(saved: Config, new: Config, *, ignore: Set[str] = frozenset()) -> List[str]:
    """``"key: old -> new"`` for each dotted key whose value differs between the two
    configs, except the keys in ``ignore``."""
    old, now = dict(_flatten(saved)), dict(_flatten(new))
    return [
        f"{key}: {old.get(key)!r} -> {now.get(key)!r}"
        for key in sorted(set(old) | set(now))
        if key not in ignore and old.get(key) != now.get(key)
    ]


def resume_free_keys(raw: Config, filled: Config) -> Set[str]:
    """The keys whose change does not stop a resumption: ``[paths]`` and what [sap]
    takes from it (the trainer compares the data and the base encoder themselves, by
    digest and fingerprint, wherever they now lie), and the training settings the
    config class lists as ``resume_free`` (checkpoint interval, time budget)."""
    block = filled[SECTION]
    config_type = type(training_config(block["objective"], block["training"]))
    keys = {f"{SECTION}.training.{name}" for name in config_type.resume_free}
    keys.update(key for key, _ in _flatten(filled) if key.startswith("paths."))
    keys.update(_keys_using(raw[SECTION], "${paths.", prefix=SECTION))
    return keys


def pretrain_sap(
    config_path: PathLike,
    output_dir: PathLike,
    *,
    overrides: Optional[Dict[str, Any]] = None,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool = True,
) -> Union[SapResult, RetrievalResult]:
    """Train as the config at ``config_path`` (with ``overrides``) says, into
    ``output_dir``. The config, the inputs and the output directory are checked
    first; ``resume`` refuses a config that differs from the saved one (E635) in
    anything but :func:`resume_free_keys`. The filled config is written atomically
    to ``output_dir/config.cfg`` before training starts."""
    raw = load_sap_config(config_path, overrides)
    run, filled = resolve_sap_config(raw, path=config_path)
    output_dir = Path(output_dir)
    saved_path = output_dir / CONFIG_FILE
    if resume:
        if not saved_path.is_file():
            raise SapelError(Errors.E636.format(path=output_dir, name=CONFIG_FILE))
        saved = load_sap_config(saved_path)
        ignore = resume_free_keys(raw, filled)
        changes = config_changes(saved, filled, ignore=ignore)
        if changes:
            free = ["[paths]", *sorted(k for k in ignore if k.startswith(f"{SECTION}.training."))]
            raise SapelError(
                Errors.E635.format(
                    path=output_dir, saved=saved_path, changes="; ".join(changes), free=", ".join(free)
                )
            )
    # run() checks the outputs too, but only after config.cfg is written: fine-tuning
    # OUT/model-last into OUT must not replace the earlier run's config either
    block = filled[SECTION]
    kb_paths = block["kb_paths"]
    inputs = [kb_paths] if isinstance(kb_paths, str) else list(kb_paths or [])
    inputs += [p for p in (block["pairs_path"], block["corpus"], block["base_encoder"]) if p]
    check_sap_output(output_dir, inputs=inputs)
    atomic_write_bytes(saved_path, (filled.to_str() + "\n").encode("utf8"))
    return run(output_dir, resume=resume, show_progress=show_progress, device=device)


def _flatten(config: Dict[str, Any], prefix: str = "") -> Iterator[Tuple[str, Any]]:
    for key, value in config.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _keys_using(block: Dict[str, Any], text: str, *, prefix: str) -> List[str]:
    """The dotted keys of ``block`` whose raw value contains ``text``."""
    return [
        f"{prefix}.{key}"
        for key, value in _flatten(block)
        if text in (value if isinstance(value, str) else str(value))
    ]


def _problems(err: ConfigValidationError) -> str:
    """confection's validation errors as ``key: problem`` items."""
    if not err.errors:
        return str(err.title or err).strip()
    return "; ".join(
        f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg')}"
        for item in err.errors
    )
