"""Validate the fields of an `msgraph_cert` connection and build the auth objects from them.

Plain Python (no Airflow import) so the CLI and tests use the same rules as the hook. Every
error names the connection field and says how to fix it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_graphcert.auth.assertion import SIGNING_ALGORITHMS, SigningAlgorithm
from airflow_provider_graphcert.auth.certificates import DEFAULT_EXPIRY_WARNING_DAYS, decode_inline_material
from airflow_provider_graphcert.auth.clouds import get_cloud
from airflow_provider_graphcert.auth.credentials import (
    AssertionCredential,
    AssertionFileCredential,
    CertificateCredential,
    CertificateMaterial,
    StaticAssertionCredential,
)
from airflow_provider_graphcert.auth.token_client import TokenProvider
from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.graph.retry import RetryPolicy

CONN_TYPE = "msgraph_cert"
DEFAULT_TIMEOUT_SECONDS = 60.0

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
# Multi-tenant aliases work for user sign-in, not for app-only tokens.
_TENANT_ALIASES = {"common", "organizations", "consumers"}
# Schemes requests can use for a proxy (socks needs the PySocks extra).
_PROXY_SCHEMES = frozenset({"http", "https", "socks5", "socks5h", "socks4", "socks4a"})
CREDENTIAL_FIELDS = ("certificate_path", "certificate_data", "client_assertion", "client_assertion_file")


def parse_extra(extra: object) -> dict[str, Any]:
    """The connection's extra as a dict, from the JSON text Airflow stores or an already parsed value.

    Airflow's ``extra_dejson`` turns text that is not JSON into ``{}`` (so the first missing field
    would take the blame) and passes a JSON list or string through; both get one clear error here.
    """
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"The connection's extra is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
                'It must be one JSON object, such as {"tenant_id": "contoso.onmicrosoft.com", '
                '"certificate_path": "/secrets/app.pem"}.',
                field="extra",
            ) from None
    if not isinstance(extra, Mapping):
        kind = {list: "a list", str: "a string", bool: "true/false", int: "a number", float: "a number"}.get(
            type(extra), type(extra).__name__
        )
        raise ConfigurationError(
            f"The connection's extra is {kind} in JSON; it must be one JSON object of fields, such as "
            '{"tenant_id": "contoso.onmicrosoft.com", "certificate_path": "/secrets/app.pem"}.',
            field="extra",
        )
    return {str(key): value for key, value in extra.items()}


def finite_number(
    value: Any, name: str, *, default: float, minimum: float = 0.0, inclusive: bool = False, unit: str = ""
) -> float:
    """A number field: refuses text, NaN and infinity (``float()`` accepts all three), and too small values."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a number{unit}, not {value}.", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigurationError(f"{name} must be a number{unit}, not '{value}'.", field=name) from None
    if not math.isfinite(number):
        raise ConfigurationError(f"{name} must be a finite number{unit}, not '{value}'.", field=name)
    if number < minimum or (number == minimum and not inclusive):
        bound = f"at least {minimum:g}" if inclusive else f"more than {minimum:g}"
        raise ConfigurationError(f"{name} must be {bound}, not {value}.", field=name)
    return number


def _text(extra: Mapping[str, Any], name: str) -> str | None:
    value = extra.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value or None


def _bool(extra: Mapping[str, Any], name: str, default: bool) -> bool:
    value = extra.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, not '{value}'.", field=name)


def _https_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.username or parts.password:
        # It would be repeated in every message that names the endpoint.
        raise ConfigurationError(
            f"{name} must not hold a user name or password; give the bare origin, such as "
            "https://login.microsoftonline.com.",
            field=name,
        )
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigurationError(
            f"{name} must be an https:// URL (got '{value}'); Entra ID and Graph only speak HTTPS.",
            field=name,
        )
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise ConfigurationError(
            f"{name} must be a bare origin such as https://login.microsoftonline.com (got '{value}').",
            field=name,
        )
    return f"https://{parts.netloc}"


def validate_tenant_id(value: str | None) -> str:
    if not value:
        raise ConfigurationError(
            "tenant_id is empty. Copy the Directory (tenant) ID from the app registration's "
            "Overview page in the Entra admin center.",
            field="tenant_id",
        )
    if value.lower() in _TENANT_ALIASES:
        raise ConfigurationError(
            f"tenant_id '{value}' is a multi-tenant alias; app-only tokens need the real tenant: the "
            "Directory (tenant) ID GUID or a domain such as contoso.onmicrosoft.com.",
            field="tenant_id",
        )
    if not (_GUID.match(value) or _DOMAIN.match(value)):
        raise ConfigurationError(
            f"tenant_id '{value}' is neither a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) nor a domain "
            "name. Copy the Directory (tenant) ID from the app registration's Overview page.",
            field="tenant_id",
        )
    return value


def validate_client_id(value: str | None) -> str:
    if not value:
        raise ConfigurationError(
            "Client ID (the connection's login) is empty. Copy the Application (client) ID from the "
            "app registration's Overview page.",
            field="login",
        )
    if not _GUID.match(value):
        raise ConfigurationError(
            f"Client ID (login) '{value}' is not a GUID. Copy the Application (client) ID, not the "
            "object ID or the app's name, from the app registration's Overview page.",
            field="login",
        )
    return value


def _proxies(value: Any) -> dict[str, str] | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"proxies is not valid JSON ({exc.msg}).", field="proxies") from None
        else:
            value = {"http": text, "https": text}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigurationError(
            'proxies must be a URL or a JSON object like {"https": "http://proxy:8080"}.', field="proxies"
        )
    proxies = {str(k): v for k, v in value.items()}
    for key, url in proxies.items():
        if key == "no_proxy":
            continue
        if "://" not in url:
            url = proxies[key] = f"http://{url}"  # host:port, as requests reads it
        try:
            parts = urlsplit(url)
            usable = parts.scheme in _PROXY_SCHEMES and bool(parts.hostname) and (parts.port or 0) >= 0
        except ValueError:  # e.g. an unclosed '[' or a port that is not a number
            usable = False
        if not usable:
            raise ConfigurationError(
                f"proxies['{key}'] is not a proxy URL (such as http://proxy.example.com:8080); a proxy is "
                f"given as {'/'.join(sorted(_PROXY_SCHEMES))}://host:port.",
                field="proxies",
            )
    return proxies


def _timeout(value: Any) -> float:
    return finite_number(value, "timeout", default=DEFAULT_TIMEOUT_SECONDS, unit=" of seconds")


def _verify(value: str | None) -> bool | str:
    if value is None:
        return True
    if value.lower() in {"false", "0", "no"}:
        raise ConfigurationError(
            "ca_bundle cannot turn TLS verification off: point it at the CA certificate (PEM) that "
            "signs the proxy or private endpoint instead.",
            field="ca_bundle",
        )
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigurationError(
            f"ca_bundle '{value}' does not exist on this machine; give the path of a PEM file with "
            "the CA certificate(s) to trust.",
            field="ca_bundle",
        )
    return str(path)


# -- retry and throttling ----------------------------------------------------------------------
# Connection extra field -> RetryPolicy attribute. Empty fields keep RetryPolicy's defaults; a
# hook argument (GraphCertHook(retry_policy=...)) overrides the connection as a whole.
RETRY_FIELDS = {
    "retry_max_attempts": "max_attempts",
    "retry_backoff_seconds": "backoff_initial",
    "retry_backoff_max_seconds": "backoff_max",
    "retry_max_total_wait_seconds": "max_total_wait",
    "retry_max_job_wait_seconds": "max_job_wait",
}


def _retry_number(extra: Mapping[str, Any], name: str) -> float | None:
    value = extra.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigurationError(
            f"{name} must be a number, not '{value}'; leave it empty for the default.", field=name
        ) from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigurationError(f"{name} must be a finite number, not '{value}'.", field=name)
    if name == "retry_max_attempts":
        if number < 1 or number != int(number):
            raise ConfigurationError(
                f"{name} must be a whole number of at least 1 (1 means no retries), not '{value}'.", field=name
            )
    elif number < 0:
        raise ConfigurationError(f"{name} must be 0 or more seconds, not '{value}'.", field=name)
    return number


def retry_policy(extra: Mapping[str, Any]) -> RetryPolicy:
    """The Graph retry policy a connection asks for: RetryPolicy's defaults unless a retry_* field is set."""
    chosen: dict[str, Any] = {}
    for name, attribute in RETRY_FIELDS.items():
        number = _retry_number(extra, name)
        if number is not None:
            chosen[attribute] = int(number) if attribute == "max_attempts" else number
    policy = RetryPolicy(**chosen)
    if policy.backoff_initial > policy.backoff_max:
        raise ConfigurationError(
            f"retry_backoff_seconds ({policy.backoff_initial:g}) is more than retry_backoff_max_seconds "
            f"({policy.backoff_max:g}); raise the maximum or lower the first backoff.",
            field="retry_backoff_seconds",
        )
    return policy


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything an `msgraph_cert` connection says, validated."""

    tenant_id: str
    client_id: str
    credential: AssertionCredential = field(repr=False)
    authority_host: str
    graph_url: str
    scope: str
    verify: bool | str = True
    proxies: dict[str, str] | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    conn_id: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_fields(
        cls,
        *,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | str | None,
        conn_id: str | None = None,
    ) -> ConnectionSettings:
        extra = parse_extra(extra)
        cloud = get_cloud(_text(extra, "cloud"))
        authority = _text(extra, "authority_host")
        graph = _text(extra, "graph_url")
        authority_host = _https_url(authority, "authority_host") if authority else cloud.authority_host
        graph_url = _https_url(graph, "graph_url") if graph else cloud.graph_url
        scope = _text(extra, "scope") or f"{graph_url}/.default"
        if not scope.endswith("/.default"):
            raise ConfigurationError(
                f"scope '{scope}' must end in '/.default' for app-only tokens (AADSTS1002012), e.g. "
                f"{graph_url}/.default. Leave it empty to use that default.",
                field="scope",
            )
        return cls(
            tenant_id=validate_tenant_id(_text(extra, "tenant_id")),
            client_id=validate_client_id((login or "").strip() or None),
            credential=_credential(extra, password),
            authority_host=authority_host,
            graph_url=graph_url,
            scope=scope,
            verify=_verify(_text(extra, "ca_bundle")),
            proxies=_proxies(extra.get("proxies")),
            timeout=_timeout(extra.get("timeout")),
            conn_id=conn_id,
            retry=retry_policy(extra),
        )

    def token_provider(self, *, secret_sink: Callable[[str], None] | None = None) -> TokenProvider:
        return TokenProvider(
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            credential=self.credential,
            authority_host=self.authority_host,
            scope=self.scope,
            verify=self.verify,
            proxies=self.proxies,
            timeout=self.timeout,
            secret_sink=secret_sink,
        )


def _credential(extra: Mapping[str, Any], password: str | None) -> AssertionCredential:
    given = [name for name in CREDENTIAL_FIELDS if _text(extra, name)]
    if not given:
        raise ConfigurationError(
            "The connection has no credential. Set certificate_path (a .pem or .pfx file on every "
            "worker) or certificate_data (the PEM text or base64 .pfx, e.g. from a secrets backend).",
            field="certificate_path",
        )
    if len(given) > 1:
        raise ConfigurationError(
            f"The connection sets {' and '.join(given)}; set exactly one credential field "
            "(certificate_path or certificate_data is recommended).",
            field=given[1],
        )
    chosen = given[0]
    if chosen == "client_assertion":
        return StaticAssertionCredential(_text(extra, "client_assertion") or "")
    if chosen == "client_assertion_file":
        return AssertionFileCredential(Path(_text(extra, "client_assertion_file") or "").expanduser())
    algorithm = (_text(extra, "signing_algorithm") or "PS256").upper()
    if algorithm not in SIGNING_ALGORITHMS:
        raise ConfigurationError(
            f"signing_algorithm '{algorithm}' is not supported; use PS256 (default) or RS256.",
            field="signing_algorithm",
        )
    key_path = _text(extra, "key_path")
    if chosen == "certificate_path":
        material = CertificateMaterial(
            path=Path(_text(extra, "certificate_path") or "").expanduser(),
            key_path=Path(key_path).expanduser() if key_path else None,
            password=password or None,
        )
    else:
        if key_path:
            raise ConfigurationError(
                "key_path is only for certificate_path; with certificate_data put the key in the same PEM text.",
                field="key_path",
            )
        material = CertificateMaterial(
            inline=decode_inline_material(_text(extra, "certificate_data") or "", source="certificate_data"),
            password=password or None,
        )
    warning_days = _whole_days(extra.get("certificate_expiry_warning_days"), "certificate_expiry_warning_days")
    signing: SigningAlgorithm = "PS256" if algorithm == "PS256" else "RS256"
    return CertificateCredential(
        material=material,
        algorithm=signing,
        include_chain=_bool(extra, "send_certificate_chain", False),
        expiry_warning_days=warning_days,
    )


def _whole_days(value: Any, name: str) -> int:
    days = finite_number(value, name, default=DEFAULT_EXPIRY_WARNING_DAYS, inclusive=True, unit=" of days")
    if days != int(days):
        raise ConfigurationError(f"{name} must be a whole number of days, not {value}.", field=name)
    return int(days)
