"""Text models shared by the families: the pretrained sentence encoder (``encoder.TextEncoder``)."""

from kforge.text.encoder import (
    DIM,
    MODEL_NAME,
    Embedder,
    EncodedText,
    TextEncoder,
    current_encoder,
    encoder_available,
    use_encoder,
)

__all__ = ["DIM", "MODEL_NAME", "Embedder", "EncodedText", "TextEncoder", "current_encoder", "encoder_available",
           "use_encoder"]
