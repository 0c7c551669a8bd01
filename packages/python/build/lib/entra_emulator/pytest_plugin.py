"""pytest fixtures: ``entra_emulator`` (one emulator per test session, reset before each test)
and ``entra_profile`` (a function that applies a flow's environment variables for one test)."""

import pytest

from . import Emulator


@pytest.fixture(scope="session")
def _entra_emulator_session():
    with Emulator.start() as emulator:
        yield emulator


@pytest.fixture
def entra_emulator(_entra_emulator_session):
    """The running emulator, reset to its starting seed for this test."""
    _entra_emulator_session.reset()
    return _entra_emulator_session


@pytest.fixture
def entra_profile(entra_emulator, monkeypatch):
    """``entra_profile("client_secret")`` sets that profile's variables for this test."""
    def apply(name):
        env = entra_emulator.profile(name)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env
    return apply
