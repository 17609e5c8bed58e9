"""The package's public names: a small, sorted ``__all__`` that lists every one of them."""

from __future__ import annotations

import types

import analysis


def test_all_is_sorted():
    assert analysis.__all__ == sorted(analysis.__all__)


def test_every_public_name_is_in_all():
    public = {
        name for name, value in vars(analysis).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert public == set(analysis.__all__)


def test_every_name_in_all_resolves():
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name
