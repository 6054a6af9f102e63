"""Text models shared by the families: the pretrained sentence encoder (``encoder.TextEncoder``), the process's
encoder that model members embed through (``current_encoder``/``use_encoder``), and the scikit-learn step
``members.EncodedText``."""

from kforge.text.encoder import (
    DIM,
    MODEL_NAME,
    Embedder,
    TextEncoder,
    current_encoder,
    encoder_available,
    use_encoder,
)

__all__ = ["DIM", "MODEL_NAME", "Embedder", "TextEncoder", "current_encoder", "encoder_available",
           "use_encoder"]
