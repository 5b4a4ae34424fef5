"""The public surface of ``genstatem.net``: complete, and nothing private."""

from __future__ import annotations

import types

import genstatem.net


def test_all_lists_every_public_name() -> None:
    """Every public name in genstatem.net is in __all__, and every name in __all__ exists."""
    public = {
        name
        for name, value in vars(genstatem.net).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(genstatem.net.__all__)


def test_nothing_private_is_exported() -> None:
    """No name in __all__ is private, and no exported class lives outside the package's modules."""
    assert not [name for name in genstatem.net.__all__ if name.startswith("_")]
    for name in genstatem.net.__all__:
        value = getattr(genstatem.net, name)
        if isinstance(value, type):
            assert value.__module__.startswith("genstatem.net._"), name
