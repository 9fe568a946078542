"""Shared fixtures. Airflow reads its configuration at import, so its home is set up first."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="graphcert-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

import pytest  # noqa: E402

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate, create_self_signed  # noqa: E402


@pytest.fixture(scope="session")
def rsa_cert() -> SelfSignedCertificate:
    """One 2048-bit certificate for the session: key generation is the slow part of these tests."""
    return create_self_signed("CN=graphcert-tests")


@pytest.fixture(scope="session")
def other_rsa_cert() -> SelfSignedCertificate:
    return create_self_signed("CN=graphcert-other")


@pytest.fixture
def pem_file(tmp_path: Path, rsa_cert: SelfSignedCertificate) -> Path:
    path = tmp_path / "app.pem"
    path.write_bytes(rsa_cert.key_pem() + rsa_cert.cert_pem())
    return path
