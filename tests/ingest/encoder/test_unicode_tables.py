"""The stored code-point tables equal what this Python's Unicode database gives."""

from __future__ import annotations

import unicodedata

import pytest

from ingest.encoder import unicode_tables, wordpiece
from ingest.encoder.unicode_tables import scan_python_spaces, scan_reorderable_ranges


def test_the_stored_tables_are_for_this_python_and_equal_a_fresh_scan() -> None:
    if unicodedata.unidata_version != unicode_tables.UNIDATA_VERSION:
        pytest.fail(
            f"Python's Unicode database is {unicodedata.unidata_version}, the stored tables are for "
            f"{unicode_tables.UNIDATA_VERSION}: regenerate them (python -m ingest.encoder.unicode_tables)"
        )
    assert scan_python_spaces() == unicode_tables.PYTHON_SPACES
    assert scan_reorderable_ranges() == unicode_tables.REORDERABLE_RANGES
    assert wordpiece._python_spaces() is unicode_tables.PYTHON_SPACES
    # A few code points by hand: ideographic space splits; U+0915 U+093F (Mc, class 0) is not kept,
    # U+0F73 (NFD holds U+0F71 and U+0F72, Mn) not, U+1D165 (Mc with class 216) is; U+0378 is unassigned.
    assert 0x3000 in unicode_tables.PYTHON_SPACES and 0x200B not in unicode_tables.PYTHON_SPACES
    kept = {cp for a, b in unicode_tables.REORDERABLE_RANGES for cp in range(a, b + 1)}
    assert {0x1D165, 0x0378} <= kept and not {0x093F, 0x0F73, 0x00E9} & kept


def test_render_reproduces_the_stored_block() -> None:
    text = unicode_tables.render_tables()
    source = unicode_tables.__file__
    with open(source, encoding="utf-8") as fh:
        assert text in fh.read()
