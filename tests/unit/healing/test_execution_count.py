"""A notebook traceback's execution counter reaches the model as a log2 bucket (``execn_*``): an error in one of the
first cells run after a kernel start (an execution-order mistake, typically) reads differently from one deep into a
session. Scripts and kernels that name cells by file carry ``execn_none``."""

import pytest
from kforge.healing.features import python_fields
from kforge.healing.traceback import parse_traceback

CELL = """---------------------------------------------------------------------------
NameError                                 Traceback (most recent call last)
Cell In[{n}], line 2
      1 # Compute precision
----> 2 precision = precision_score(y_test, y_pred)

NameError: name 'y_pred' is not defined"""

IPY = """---------------------------------------------------------------------------
KeyError                                  Traceback (most recent call last)
<ipython-input-{n}-4f2a1c9b7e11> in <module>
----> 1 df['price']

KeyError: 'price'"""

SCRIPT = """Traceback (most recent call last):
  File "/home/u/train.py", line 3, in <module>
    import torchx
ModuleNotFoundError: No module named 'torchx'"""


@pytest.mark.parametrize("text, n, bucket", [
    (CELL.format(n=1), 1, "execn_1"), (CELL.format(n=3), 3, "execn_2-3"), (CELL.format(n=25), 25, "execn_16-31"),
    (IPY.format(n=7), 7, "execn_4-7"), (IPY.format(n=120), 120, "execn_64+"), (SCRIPT, None, "execn_none"),
])
def test_the_execution_counter_becomes_one_context_token(text: str, n: int | None, bucket: str) -> None:
    err = parse_traceback(text)
    assert err.execution_count == n
    tokens = python_fields(err)["context"].split()
    assert bucket in tokens and sum(t.startswith("execn_") for t in tokens) == 1
