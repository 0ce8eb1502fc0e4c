"""The training loop that SAP and retrieval-aware training share
(:mod:`spacy_sapel.sap.loop`): a checkpoint resumes only a run of its own objective."""
from __future__ import annotations

import pytest
from sapel_test_utils import TOY_CONCEPTS

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.sap.pairs import kb_pairs
from spacy_sapel.sap.retrieval import RetrievalConfig, RetrievalTrainer
from spacy_sapel.sap.trainer import SapConfig, SapTrainer


def test_a_checkpoint_resumes_only_its_own_objective(tiny_bert_dir, tmp_path):
    kb = KnowledgeBase.from_concepts(Concept(cid, n[0], n[1:6]) for cid, n in TOY_CONCEPTS.items())
    mentions = [(names[6], cid) for cid, names in TOY_CONCEPTS.items()]
    pairs = kb_pairs(kb, seed=0)
    sap_cfg = SapConfig(batch_size=16, max_steps=1)
    retrieval_cfg = RetrievalConfig(batch_size=4, max_steps=1, n_candidates=4)

    def encoder() -> SapEncoder:
        return SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")

    RetrievalTrainer(encoder(), kb, mentions, tmp_path / "retrieval", config=retrieval_cfg).train(show_progress=False)
    SapTrainer(encoder(), pairs, tmp_path / "sap", config=sap_cfg).train(show_progress=False)
    with pytest.raises(ValueError, match="E605.*'retrieval' objective"):
        SapTrainer(encoder(), pairs, tmp_path / "retrieval", config=sap_cfg).train(resume=True, show_progress=False)
    # a SAP checkpoint lacks the retrieval objective's name vectors
    with pytest.raises(ValueError, match="E606"):
        RetrievalTrainer(encoder(), kb, mentions, tmp_path / "sap", config=retrieval_cfg).train(
            resume=True, show_progress=False
        )
    # each resumes its own
    SapTrainer(encoder(), pairs, tmp_path / "sap", config=sap_cfg).train(resume=True, show_progress=False)
    RetrievalTrainer(encoder(), kb, mentions, tmp_path / "retrieval", config=retrieval_cfg).train(
        resume=True, show_progress=False
    )
