"""Entity-name encoders: SapEncoder (Hugging Face model + pooling) and where its
weights come from."""
from .default import DEFAULT_ENCODER, packaged_minilm_path, resolve_encoder_path
from .sap_encoder import NORMALIZE, POOLING, SapEncoder

__all__ = [
    "DEFAULT_ENCODER",
    "NORMALIZE",
    "POOLING",
    "SapEncoder",
    "packaged_minilm_path",
    "resolve_encoder_path",
]
