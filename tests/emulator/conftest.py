"""Keys are slow to make, so the emulator tests share them; every test gets a fresh emulator."""

from __future__ import annotations

import datetime as dt

import pytest
from emulator_testkit import Signer, make_signer

# The plugin's fixtures, also registered through the pytest11 entry point once installed.
from airflow_provider_graphcert.testing.pytest_plugin import graph_emulator, graph_emulator_session

__all__ = ["graph_emulator", "graph_emulator_session"]


@pytest.fixture(scope="session")
def signer() -> Signer:
    return make_signer(subject="graphcert-daily-sync")


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return make_signer(subject="someone-else")


@pytest.fixture(scope="session")
def weak_signer() -> Signer:
    return make_signer(bits=1024, subject="graphcert-weak")


@pytest.fixture(scope="session")
def expired_signer(signer: Signer) -> Signer:
    """The same key as ``signer`` in a certificate that ran out last month."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    return make_signer(key=signer.key, subject="graphcert-expired", valid_from=start, valid_days=30)


@pytest.fixture(scope="session")
def corporate_ca() -> Signer:
    return make_signer(subject="Contoso Issuing CA")


@pytest.fixture(scope="session")
def sni_leaf(corporate_ca: Signer, signer: Signer) -> Signer:
    """A certificate from the corporate CA, for subject name + issuer trust (reused key: speed)."""
    return make_signer(key=signer.key, subject="daily-sync.contoso.com", issuer=corporate_ca)


@pytest.fixture(scope="session")
def renewed_sni_leaf(corporate_ca: Signer, other_signer: Signer) -> Signer:
    """The renewal of ``sni_leaf``: same subject and issuer, new key."""
    return make_signer(key=other_signer.key, subject="daily-sync.contoso.com", issuer=corporate_ca)
