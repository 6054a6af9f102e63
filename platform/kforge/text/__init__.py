"""Text models shared by the families: the pretrained sentence encoder (``encoder.TextEncoder``)."""

from kforge.text.encoder import DIM, MODEL_NAME, TextEncoder, encoder_available

__all__ = ["DIM", "MODEL_NAME", "TextEncoder", "encoder_available"]
