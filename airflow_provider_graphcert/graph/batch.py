"""JSON $batch: any number of requests, sent 20 at a time, results in the caller's order (docs/microsoft-rules.md §B5).

Requests that depend on each other (``dependsOn``) must travel in the same batch, so they are
grouped first and groups are packed into batches. Inner responses that were throttled (429, or
424 because a throttled dependency failed) are sent again after their own ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryBudget, RetryPolicy, parse_retry_after
from airflow_provider_graphcert.graph.throttle import ThrottleCause

# Graph refuses more than 20 requests in one $batch (docs/microsoft-rules.md §B5).
MAX_BATCH_REQUESTS = 20
_RESEND_STATUSES = frozenset({429, 503, 504})
_FAILED_DEPENDENCY = 424


@dataclass(frozen=True)
class BatchRequest:
    method: str
    url: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    depends_on: tuple[str, ...] = ()

    def as_json(self, request_id: str) -> dict[str, Any]:
        item: dict[str, Any] = {"id": request_id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            item["body"] = self.body
            # Graph rejects a body without a Content-Type in the inner headers.
            headers.setdefault("Content-Type", "application/json")
        if headers:
            item["headers"] = headers
        if self.depends_on:
            item["dependsOn"] = list(self.depends_on)
        return item


@dataclass(frozen=True)
class BatchResponse:
    id: str
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """Header lookup ignoring case (inner responses use either spelling)."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


def _ids(requests: Sequence[BatchRequest]) -> list[str]:
    ids = [r.id if r.id is not None else str(i) for i, r in enumerate(requests)]
    if len(set(ids)) != len(ids):
        raise GraphCertError("Batch request ids must be unique.")
    known = set(ids)
    for request in requests:
        missing = [d for d in request.depends_on if d not in known]
        if missing:
            raise GraphCertError(f"Batch request {request.id!r} depends on unknown id(s) {missing}.")
    return ids


def _groups(ids: list[str], requests: Sequence[BatchRequest]) -> list[list[int]]:
    """Connected components of the dependsOn graph, in first-appearance order (union-find)."""
    parent = list(range(len(ids)))
    index = {request_id: i for i, request_id in enumerate(ids)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, request in enumerate(requests):
        for dependency in request.depends_on:
            parent[find(i)] = find(index[dependency])
    groups: dict[int, list[int]] = {}
    for i in range(len(ids)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _pack(groups: Iterable[list[int]]) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    for group in groups:
        if len(group) > MAX_BATCH_REQUESTS:
            raise GraphCertError(
                f"{len(group)} batch requests depend on each other; Graph allows at most "
                f"{MAX_BATCH_REQUESTS} in one batch, so a dependsOn chain cannot be longer."
            )
        if len(current) + len(group) > MAX_BATCH_REQUESTS:
            batches.append(current)
            current = []
        current.extend(group)
    if current:
        batches.append(current)
    return batches


def run_batch(client: GraphClient, requests: Sequence[BatchRequest]) -> list[BatchResponse]:
    """Send ``requests`` through /$batch and return one response per request, in order."""
    ids = _ids(requests)
    results: dict[int, BatchResponse] = {}
    for batch in _pack(_groups(ids, requests)):
        results.update(_send_with_resends(client, batch, ids, requests))
    return [results[i] for i in range(len(requests))]


def _send_with_resends(
    client: GraphClient, batch: list[int], ids: list[str], requests: Sequence[BatchRequest]
) -> dict[int, BatchResponse]:
    policy = client.retry or RetryPolicy()
    budget = RetryBudget(policy)
    results: dict[int, BatchResponse] = {}
    pending = batch
    while True:
        answered = _send_once(client, pending, ids, requests)
        results.update(answered)
        throttled = [i for i in pending if answered[i].status in _RESEND_STATUSES]
        if not throttled:
            return results
        # A request that failed only because its throttled dependency failed goes again with it.
        dependents = [
            i
            for i in pending
            if answered[i].status == _FAILED_DEPENDENCY
            and any(answered[ids.index(d)].status in _RESEND_STATUSES for d in requests[i].depends_on)
        ]
        waits = [parse_retry_after(answered[i].header("Retry-After")) for i in throttled]
        known_waits = [w for w in waits if w is not None]
        delay = budget.next_delay(max(known_waits) if known_waits else None)
        if delay is None:
            return results  # the caller sees the 429s in the responses
        budget.spend(delay)
        if known_waits:
            # Graph's Retry-After is about the app's quota: the job's other workers wait too.
            first = answered[throttled[0]]
            client.throttle.pause(delay, ThrottleCause(first.status, "POST", "/$batch", first.header("request-id")))
            client.throttle.wait()
        else:
            client.sleep(delay)
        pending = sorted(set(throttled) | set(dependents))


def _send_once(
    client: GraphClient, batch: list[int], ids: list[str], requests: Sequence[BatchRequest]
) -> dict[int, BatchResponse]:
    body = {"requests": [requests[i].as_json(ids[i]) for i in batch]}
    # Dependencies outside this resend are already satisfied; drop them so Graph does not 400.
    in_batch = {ids[i] for i in batch}
    for item in body["requests"]:
        if "dependsOn" in item:
            item["dependsOn"] = [d for d in item["dependsOn"] if d in in_batch] or None
            if item["dependsOn"] is None:
                del item["dependsOn"]
    reply = client.send_json("POST", "$batch", body)
    responses = reply.get("responses") if isinstance(reply, dict) else None
    if not isinstance(responses, list):
        raise GraphCertError("Graph's $batch reply has no 'responses' list.")
    by_id = {str(response.get("id")): response for response in responses if isinstance(response, dict)}
    answered: dict[int, BatchResponse] = {}
    for i in batch:
        raw = by_id.get(ids[i])
        if raw is None:
            raise GraphCertError(f"Graph's $batch reply has no response for request id {ids[i]!r}.")
        status, raw_headers = raw.get("status"), raw.get("headers") or {}
        if not isinstance(status, int) or isinstance(status, bool) or not isinstance(raw_headers, dict):
            raise GraphCertError(
                f"Graph's $batch reply for request id {ids[i]!r} is malformed: 'status' is not a number or "
                "'headers' is not an object."
            )
        headers = {str(k): str(v) for k, v in raw_headers.items()}
        answered[i] = BatchResponse(id=ids[i], status=status, headers=headers, body=raw.get("body"))
    return answered
