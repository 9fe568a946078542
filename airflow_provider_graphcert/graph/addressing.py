"""Where a Graph request may go: the origin rule that keeps the token on the Graph host.

Shared by the sync and async clients so both refuse a next or delta link to another host alike.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow_provider_graphcert.errors import GraphCertError


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` in lower case: what decides whether a credential may go to a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def graph_request_url(graph_url: str, api_version: str, path_or_url: str) -> str:
    """Absolute URL for a Graph API path; an absolute URL (a next or delta link) must stay on the Graph host,
    since the request carries the token."""
    if path_or_url.startswith(("https://", "http://")):
        if url_origin(path_or_url) != url_origin(graph_url):
            raise GraphCertError(
                f"Refusing to send the Graph token to {url_origin(path_or_url)}: Graph returned a link to a "
                f"host other than {url_origin(graph_url)}."
            )
        return path_or_url
    return f"{graph_url}/{api_version}/{path_or_url.lstrip('/')}"
