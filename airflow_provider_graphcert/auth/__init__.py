"""Certificate -> client assertion -> access token. Knows nothing of Airflow."""

from airflow_provider_graphcert.auth.assertion import inspect_assertion, mint_assertion
from airflow_provider_graphcert.auth.certificates import (
    ClientCertificate,
    check_validity,
    load_client_certificate,
)
from airflow_provider_graphcert.auth.credentials import (
    AssertionCredential,
    AssertionFileCredential,
    CertificateCredential,
    CertificateMaterial,
    StaticAssertionCredential,
)
from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE, AccessToken, TokenCache
from airflow_provider_graphcert.auth.token_client import TokenProvider

__all__ = [
    "DEFAULT_TOKEN_CACHE",
    "AccessToken",
    "AssertionCredential",
    "AssertionFileCredential",
    "CertificateCredential",
    "CertificateMaterial",
    "ClientCertificate",
    "StaticAssertionCredential",
    "TokenCache",
    "TokenProvider",
    "check_validity",
    "inspect_assertion",
    "load_client_certificate",
    "mint_assertion",
]
