"""National clouds: which authority and Graph hosts belong together (docs/microsoft-rules.md §A1).

Tokens from one cloud are useless in another, so the pair is chosen by one ``cloud`` setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_graphcert.errors import ConfigurationError


@dataclass(frozen=True)
class Cloud:
    name: str
    authority_host: str
    graph_url: str


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        Cloud("public", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
        # GCC High (L4) and DoD (L5) share the authority but not the Graph host.
        Cloud("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        Cloud("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        # 21Vianet; login.chinacloudapi.cn is the deprecated alias (msal DEPRECATED_AZURE_CHINA).
        Cloud("china", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn"),
    )
}

DEFAULT_CLOUD = "public"


def get_cloud(name: str | None) -> Cloud:
    key = (name or DEFAULT_CLOUD).strip().lower()
    try:
        return CLOUDS[key]
    except KeyError:
        raise ConfigurationError(
            f"cloud '{name}' is not known. Use one of: {', '.join(CLOUDS)} "
            "(M365 GCC, not High, uses 'public'), or set authority_host and graph_url explicitly.",
            field="cloud",
        ) from None
