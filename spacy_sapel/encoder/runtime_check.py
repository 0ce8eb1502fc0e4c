"""Whether a KB embedded by one encoder runtime may be searched with another's vectors:
only the same weights, and only when both runtimes agree on a few of the KB's names."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import Errors, IndexLoadError
from .runtimes import MIN_PROBE_COSINE, N_PROBES, split_fingerprint
from .sap_encoder import SapEncoder


def probe_names(names: Sequence[str], n: int = N_PROBES) -> list:
    """``n`` names spread evenly over ``names`` (all when fewer)."""
    if len(names) <= n:
        return list(names)
    return [names[int(i)] for i in np.linspace(0, len(names) - 1, n)]


def runtimes_agree(
    encoder: SapEncoder,
    index_fingerprint: Optional[str],
    names: Sequence[str],
    *,
    tolerance: Optional[float] = None,
) -> bool:
    """True when ``index_fingerprint`` is the encoder's own, or names the same weights
    embedded by another runtime whose vectors of the probe ``names`` have a mean
    cosine of at least ``tolerance`` (default :data:`.runtimes.MIN_PROBE_COSINE`)
    with the encoder's; False when the weights differ. Raises IndexLoadError (naming
    both runtimes) when the same weights' runtimes disagree."""
    if index_fingerprint == encoder.fingerprint:
        return True
    if not isinstance(index_fingerprint, str):
        return False
    weights, embedded = split_fingerprint(index_fingerprint)
    if weights != encoder.weights_fingerprint or embedded == encoder.runtime:
        return False
    tolerance = MIN_PROBE_COSINE if tolerance is None else tolerance
    probes = probe_names(names)
    ours = encoder.encode(probes)
    theirs = encoder.with_runtime(embedded).encode(probes)
    cosines = (ours * theirs).sum(axis=1)
    if len(probes) and cosines.mean() < tolerance:
        worst = int(np.argmin(cosines))
        raise IndexLoadError(
            Errors.E325.format(
                embedded=embedded,
                runtime=encoder.runtime,
                n=len(probes),
                cosine=float(cosines.mean()),
                tolerance=tolerance,
                name=probes[worst],
                worst=float(cosines[worst]),
            )
        )
    return True
