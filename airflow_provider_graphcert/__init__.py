"""Apache Airflow provider for Microsoft Graph and SharePoint with Entra ID certificate authentication."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    # A plain literal: an exception here would break `import airflow` for every user (Airflow loads it
    # from the entry point at import; tests/airflow/test_provider_registration.py checks it against
    # Airflow's provider_info schema).
    return {
        "package-name": "airflow-provider-graphcert",
        "name": "Microsoft Graph (client certificate)",
        "description": "Microsoft Graph and SharePoint Online as an Entra ID app that signs in with a "
        "client certificate: fresh client assertions minted for every token.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Microsoft Graph (client certificate)",
                "external-doc-url": "https://learn.microsoft.com/graph/overview",
                "tags": ["azure"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Microsoft Graph (client certificate)",
                "python-modules": ["airflow_provider_graphcert.hooks.graph_cert"],
            }
        ],
        "operators": [
            {
                "integration-name": "Microsoft Graph (client certificate)",
                "python-modules": [
                    "airflow_provider_graphcert.operators.graph",
                    "airflow_provider_graphcert.operators.sharepoint",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Microsoft Graph (client certificate)",
                "python-modules": ["airflow_provider_graphcert.sensors.sharepoint"],
            }
        ],
        # The spo:// scheme of ObjectStoragePath (docs/object-storage.md).
        "filesystems": ["airflow_provider_graphcert.fs.spo"],
        "triggers": [
            {
                "integration-name": "Microsoft Graph (client certificate)",
                "python-modules": [
                    "airflow_provider_graphcert.triggers.sharepoint_file",
                    "airflow_provider_graphcert.triggers.sharepoint_watch",
                ],
            }
        ],
        # spo:// Asset URIs of SharePoint locations: one normal form, and their OpenLineage dataset.
        "asset-uris": [
            {
                "schemes": ["spo"],
                "handler": "airflow_provider_graphcert.operators.lineage.sanitize_spo_uri",
                "to_openlineage_converter": (
                    "airflow_provider_graphcert.operators.lineage.convert_spo_asset_to_openlineage"
                ),
            }
        ],
        "connection-types": [
            {
                "connection-type": "msgraph_cert",
                "hook-class-name": "airflow_provider_graphcert.hooks.graph_cert.GraphCertHook",
                "hook-name": "Microsoft Graph (client certificate)",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port"],
                    "relabeling": {"login": "Client ID", "password": "Certificate password"},
                    "placeholders": {
                        "login": "00000000-0000-0000-0000-000000000000 (Application (client) ID)",
                        "password": "Password of the .pfx or encrypted PEM key (leave empty if none)",
                    },
                },
                "conn-fields": {
                    # A type without "null" is what makes the form mark a field required.
                    "tenant_id": {
                        "label": "Tenant ID",
                        "description": "Required. Directory (tenant) ID GUID, or a domain such as "
                        "contoso.onmicrosoft.com.",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    "certificate_path": {
                        "label": "Certificate path",
                        "description": "Credential: fill exactly one of Certificate path, Certificate data, "
                        "Pre-signed client assertion or Client assertion file. Path on every worker to a .pem "
                        "(key + certificate) or .pfx/.p12 file.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "key_path": {
                        "label": "Private key path",
                        "description": "Only when the PEM key is in a separate file from certificate_path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "certificate_data": {
                        "label": "Certificate data",
                        "description": "Credential (exactly one of the four): inline PEM text "
                        "(key + certificate) or base64 of a .pfx; best kept in a secrets backend.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "signing_algorithm": {
                        "label": "Signing algorithm",
                        "description": "PS256 with the SHA-256 thumbprint (default) or RS256 with SHA-1.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["PS256", "RS256", None],
                            "default": "PS256",
                        },
                    },
                    "send_certificate_chain": {
                        "label": "Send certificate chain (x5c)",
                        "description": "Needed when the app trusts the certificate by subject name + issuer.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "cloud": {
                        "label": "Cloud",
                        "description": "Empty means the public cloud. usgov, usgov-dod or china fill the "
                        "authority and Graph hosts; leave it empty when you set Authority host and Graph URL.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["public", "usgov", "usgov-dod", "china", None],
                            # The form's labels for the choices (its select shows "null" otherwise).
                            "values_display": {
                                "null": "(empty: public, or the hosts below)",
                                "public": "public",
                                "usgov": "usgov (GCC High)",
                                "usgov-dod": "usgov-dod (DoD)",
                                "china": "china (21Vianet)",
                            },
                        },
                    },
                    "authority_host": {
                        "label": "Authority host",
                        "description": "Overrides the cloud's login host, e.g. https://login.microsoftonline.com.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "graph_url": {
                        "label": "Graph URL",
                        "description": "Overrides the cloud's Graph host, e.g. https://graph.microsoft.com.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "scope": {
                        "label": "Scope",
                        "description": "Defaults to <Graph URL>/.default.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_assertion": {
                        "label": "Pre-signed client assertion",
                        "description": "Credential (exactly one of the four), legacy: a pasted JWT. It "
                        "expires; prefer a certificate.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "client_assertion_file": {
                        "label": "Client assertion file",
                        "description": "Credential (exactly one of the four): a federated token file re-read "
                        "for every token (e.g. Kubernetes).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "ca_bundle": {
                        "label": "CA bundle",
                        "description": "PEM file of CA certificates to trust (proxies, private endpoints).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "proxies": {
                        "label": "Proxies",
                        "description": 'A proxy URL, or JSON like {"https": "http://proxy:8080"}.',
                        "schema": {"type": ["string", "null"]},
                    },
                    "certificate_expiry_warning_days": {
                        "label": "Warn days before certificate expiry",
                        "description": "Log a warning this many days before the certificate expires; default 30.",
                        "schema": {"type": ["integer", "null"], "default": 30},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per-request timeout; default 60.",
                        "schema": {"type": ["number", "null"]},
                    },
                    # Empty retry fields keep graph/retry.py RetryPolicy's defaults (quoted below).
                    "retry_max_attempts": {
                        "label": "Retry: attempts",
                        "description": "Tries per Graph request, the first included (1 = no retries); default 10.",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "retry_backoff_seconds": {
                        "label": "Retry: first backoff (seconds)",
                        "description": "Wait before the first retry when Graph sends no Retry-After; doubles "
                        "each retry; default 0.5.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "retry_backoff_max_seconds": {
                        "label": "Retry: longest backoff (seconds)",
                        "description": "Ceiling of one backoff wait; default 60.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "retry_max_total_wait_seconds": {
                        "label": "Retry: total wait budget (seconds)",
                        "description": "Most time one request may spend waiting (Retry-After included) "
                        "before it fails; default 600.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "retry_max_job_wait_seconds": {
                        "label": "Retry: job-wide throttling budget (seconds)",
                        "description": "Most time a whole task may stay paused by Graph's Retry-After, across "
                        "all its parallel transfers, before it fails; default 900.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                },
            }
        ],
    }
