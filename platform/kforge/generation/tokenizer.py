"""A byte-level BPE tokenizer trained on the corpus (``tokenizers``), with kforge's markers."""

from collections.abc import Iterable
from pathlib import Path

SPECIALS = ("<pad>", "<eos>", "<diff>", "<issue>", "<sub>", "<type>", "<size>", "<ctx>", "<msg>", "<patch>")


class BPETokenizer:
    def __init__(self, tok: "object") -> None:
        self.tok = tok
        self.ids = {s: tok.token_to_id(s) for s in SPECIALS}  # type: ignore[attr-defined]
        self.pad_id, self.eos_id = self.ids["<pad>"], self.ids["<eos>"]

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> "BPETokenizer":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIALS),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        self.tok.save(str(path))  # type: ignore[attr-defined]

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size())  # type: ignore[attr-defined]

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]

    def marker(self, name: str) -> list[int]:
        return [self.ids[name]]

    def decode(self, ids: list[int]) -> str:
        return str(self.tok.decode([i for i in ids if i not in (self.pad_id, self.eos_id)], skip_special_tokens=True))  # type: ignore[attr-defined]
