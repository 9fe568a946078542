"""Requests are packed 20 to a batch without separating a request from what it depends on."""

from __future__ import annotations

import pytest

from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.graph.batch import MAX_BATCH_REQUESTS, BatchRequest, _groups, _ids, _pack


def test_45_independent_requests_make_three_batches() -> None:
    requests = [BatchRequest("GET", f"/users/{i}") for i in range(45)]
    ids = _ids(requests)
    batches = _pack(_groups(ids, requests))
    assert [len(b) for b in batches] == [20, 20, 5]
    assert sorted(i for b in batches for i in b) == list(range(45))


def test_dependency_chains_stay_together() -> None:
    requests = [BatchRequest("GET", f"/x/{i}", id=f"r{i}") for i in range(18)]
    requests += [
        BatchRequest("POST", "/a", id="a", body={}),
        BatchRequest("GET", "/b", id="b", depends_on=("a",)),
        BatchRequest("GET", "/c", id="c", depends_on=("b",)),
    ]
    batches = _pack(_groups(_ids(requests), requests))
    where = {i: n for n, b in enumerate(batches) for i in b}
    assert where[18] == where[19] == where[20]
    assert all(len(b) <= MAX_BATCH_REQUESTS for b in batches)


def test_bad_ids_are_refused() -> None:
    with pytest.raises(GraphCertError, match="unique"):
        _ids([BatchRequest("GET", "/a", id="1"), BatchRequest("GET", "/b", id="1")])
    with pytest.raises(GraphCertError, match="unknown id"):
        _ids([BatchRequest("GET", "/a", id="1", depends_on=("9",))])


def test_inner_body_gets_a_content_type() -> None:
    item = BatchRequest("post", "/groups", body={"displayName": "x"}).as_json("7")
    assert item == {
        "id": "7",
        "method": "POST",
        "url": "/groups",
        "body": {"displayName": "x"},
        "headers": {"Content-Type": "application/json"},
    }
