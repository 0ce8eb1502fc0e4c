"""NCBI-disease development set, gold mentions, linked against CTD MEDIC (2012).

Prints, for the exact `flat` index and ANN index types side by side: acc@1, acc@5
(correct when any id of a top-k distinct concept is in the gold id set; composite ids
split on | and +), KB build seconds (encode + index), mentions/second through
`nlp.pipe`, and `spacy.load` seconds and peak RSS of the saved pipeline (fresh process).

    python benchmarks/link_medic.py --data-dir ../shared/data [--encoder DIR] [--index-types flat,hnsw,ivf]
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import List

import spacy
import typer
from wasabi import msg

from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.index import DenseIndex
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.training import accuracy_at_k, gold_id_set, read_pubtator
from spacy_sapel.training.pubtator_docs import pubtator_to_docs

LOAD_PROBE = """
import resource, sys, time
t = time.perf_counter()
import spacy
nlp = spacy.load(sys.argv[1])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with medic-2012/ and ncbi-disease/"),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder directory or name"),
    pooling: str = typer.Option(None, help="cls or mean (default: from the encoder directory)"),
    index_types: str = typer.Option("flat,hnsw,ivf", help="Comma-separated index types"),
    output_dir: Path = typer.Option(Path("benchmarks/output/link_medic"), help="Where pipelines are saved"),
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    medic = data_dir / "medic-2012" / "medic_06Jul2012.txt"
    dev = data_dir / "ncbi-disease" / "NCBIdevelopset_corpus.txt"
    kb = read_kb(medic, "medic", name="medic-2012")
    names, _ = kb.alias_table()
    enc = SapEncoder.from_pretrained(encoder, pooling=pooling)
    msg.info(f"MEDIC: {len(kb)} concepts, {len(names)} names; encoder {encoder} "
             f"(pooling {enc.cfg['pooling']}, dim {enc.dim})")
    t = time.perf_counter()
    vectors = enc.encode(names, show_progress=True)
    encode_s = time.perf_counter() - t
    msg.info(f"Encoded {len(names)} names in {encode_s:.1f}s ({len(names) / encode_s:.0f} names/s)")

    pubtator_docs = list(read_pubtator(dev))
    mentions = [m.text for d in pubtator_docs for m in d.mentions]
    gold = [gold_id_set(m) for d in pubtator_docs for m in d.mentions]
    rows: List[tuple] = []
    for index_type in index_types.split(","):
        t = time.perf_counter()
        index = DenseIndex(index_type=index_type)
        index.build(vectors, fingerprint=enc.fingerprint)
        index_s = time.perf_counter() - t
        linker_kb = LinkerKB(encoder=enc, kb=kb, index=index)
        acc = accuracy_at_k(linker_kb.search(mentions, top_k=5), gold, kb, ks=(1, 5))

        nlp = spacy.blank("en")
        nlp.add_pipe("sapel_linker", config={"top_k": 5})
        nlp.get_pipe("sapel_linker").set_kb(lambda: linker_kb)
        docs = list(pubtator_to_docs(nlp, dev))
        n_ents = sum(len(d.ents) for d in docs)
        t = time.perf_counter()
        for _ in nlp.pipe(docs, batch_size=64):
            pass
        pipe_s = time.perf_counter() - t
        path = output_dir / index_type
        nlp.to_disk(path)
        probe = subprocess.run([sys.executable, "-c", LOAD_PROBE, str(path)],
                               capture_output=True, text=True, check=True)
        load_s, rss_mb = (float(x) for x in probe.stdout.split())
        rows.append((index_type, f"{encode_s + index_s:.1f}", f"{index_s:.2f}",
                     f"{acc[1]:.3f}", f"{acc[5]:.3f}", f"{n_ents / pipe_s:.0f}",
                     f"{load_s:.2f}", f"{rss_mb:.0f}"))
    msg.table(
        rows,
        header=("index", "KB build s", "of which index s", "acc@1", "acc@5",
                "mentions/s (nlp.pipe)", "spacy.load s", "load peak RSS MB"),
        divider=True,
    )
    msg.info(f"{len(mentions)} NCBI-disease development mentions, gold mentions, raw text")


if __name__ == "__main__":
    typer.run(main)
