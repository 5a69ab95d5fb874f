"""core.files.atomic.check_not_inputs with a repeatable input option (``invert --image A --image B``)."""
from __future__ import annotations

import pytest

from core.files.atomic import OutputOverwritesInput, check_not_inputs


def test_each_path_of_a_repeated_option_is_an_input(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    check_not_inputs([tmp_path / "out.png"], {"--image": [a, b], "--camera": None})   # no clash: nothing raised
    with pytest.raises(OutputOverwritesInput, match="--image"):
        check_not_inputs([b], {"--image": [a, b]})
