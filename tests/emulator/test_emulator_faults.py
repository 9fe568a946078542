"""The switchboard makes the emulated service throttle, fail, stall and hang up, on demand."""

from __future__ import annotations

import time

import pytest
import requests
from emulator_testkit import Signer, make_assertion, post_token, statuses, token_form

from airflow_provider_graphcert.testing import GraphEmulator
from airflow_provider_graphcert.testing.emulator.faults import TOKEN_ENDPOINT_ROUTE

DISCOVERY_ROUTE = r"/v2\.0/\.well-known/openid-configuration$"


def _token_request(emulator: GraphEmulator, signer: Signer) -> tuple[str, dict[str, str]]:
    tenant = emulator.add_tenant()
    app = emulator.add_app(tenant, certificate=signer.certificate)
    assertion = make_assertion(signer, client_id=app.client_id, audience=emulator.token_endpoint(tenant))
    return tenant.tenant_id, token_form(app.client_id, assertion, f"{emulator.graph_resource}/.default")


def _discover(emulator: GraphEmulator, tenant_id: str, session: requests.Session | None = None) -> requests.Response:
    url = f"{emulator.authority_host}/{tenant_id}/v2.0/.well-known/openid-configuration"
    return (session or requests).get(url, verify=emulator.ca_bundle, timeout=10)


def test_the_token_endpoint_throttles_once_then_answers(graph_emulator: GraphEmulator, signer: Signer) -> None:
    tenant_id, form = _token_request(graph_emulator, signer)
    graph_emulator.faults.throttle(TOKEN_ENDPOINT_ROUTE, retry_after=1, times=1)

    throttled = post_token(graph_emulator, tenant_id, form)
    answered = post_token(graph_emulator, tenant_id, form)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert throttled.json()["error_description"].startswith("AADSTS")
    assert answered.status_code == 200
    assert graph_emulator.faults.count(TOKEN_ENDPOINT_ROUTE) == 1
    # The throttled request never reached the token endpoint's rules.
    assert len(graph_emulator.state.token_requests) == 1


def test_server_errors_can_be_injected_for_the_next_n_requests(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()
    rule = graph_emulator.faults.add(DISCOVERY_ROUTE, status=503, times=2)

    answers = [_discover(graph_emulator, tenant.tenant_id) for _ in range(3)]

    assert statuses(answers) == [503, 503, 200]
    assert rule.fired == 2


def test_random_faults_repeat_with_the_same_seed(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()

    def run() -> list[int]:
        graph_emulator.faults.clear()
        graph_emulator.faults.seed(42)
        graph_emulator.faults.add(DISCOVERY_ROUTE, status=500, probability=0.5)
        with requests.Session() as session:
            return statuses(_discover(graph_emulator, tenant.tenant_id, session) for _ in range(12))

    first, second = run(), run()

    assert first == second
    assert {500, 200} <= set(first)


def test_a_request_can_be_skipped_before_a_fault_starts(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()
    graph_emulator.faults.add(DISCOVERY_ROUTE, status=504, skip=1, times=1)

    assert statuses(_discover(graph_emulator, tenant.tenant_id) for _ in range(3)) == [200, 504, 200]


def test_a_dropped_connection_gets_no_response(graph_emulator: GraphEmulator, signer: Signer) -> None:
    tenant_id, form = _token_request(graph_emulator, signer)
    graph_emulator.faults.drop_connection(TOKEN_ENDPOINT_ROUTE, mode="before_response")

    with pytest.raises(requests.ConnectionError):
        post_token(graph_emulator, tenant_id, form)
    assert post_token(graph_emulator, tenant_id, form).status_code == 200
    assert graph_emulator.faults.count(kind="drop:before_response") == 1


def test_a_connection_can_drop_part_way_through_the_body(graph_emulator: GraphEmulator, signer: Signer) -> None:
    tenant_id, form = _token_request(graph_emulator, signer)
    graph_emulator.faults.drop_connection(TOKEN_ENDPOINT_ROUTE, mode="mid_body")

    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        post_token(graph_emulator, tenant_id, form)


def test_latency_delays_the_answer(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()
    graph_emulator.faults.delay(DISCOVERY_ROUTE, seconds=0.3, times=1)

    started = time.monotonic()
    response = _discover(graph_emulator, tenant.tenant_id)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_rule_for_one_origin_leaves_the_others_alone(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()
    graph_emulator.faults.add(None, status=503, origin="graph")

    authority = _discover(graph_emulator, tenant.tenant_id)
    graph = requests.get(f"{graph_emulator.graph_url}/v1.0/$metadata", verify=graph_emulator.ca_bundle, timeout=10)

    assert authority.status_code == 200
    assert graph.status_code == 503
    assert graph.json()["error"]["code"] == "serviceNotAvailable"


def test_an_injected_throttle_echoes_the_client_request_id_and_dates_the_answer(
    graph_emulator: GraphEmulator,
) -> None:
    graph_emulator.faults.throttle("/v1.0/", times=1, retry_after=2)
    response = requests.get(
        f"{graph_emulator.graph_url}/v1.0/users",
        headers={"client-request-id": "my-run-42"},
        verify=graph_emulator.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 429
    assert response.headers["client-request-id"] == "my-run-42"
    assert response.json()["error"]["innerError"]["client-request-id"] == "my-run-42"
    assert response.headers["Date"].endswith(" GMT")
    assert response.headers["Retry-After"] == "2"


def test_graph_answers_json_for_metadata_beta_and_unknown_versions(graph_emulator: GraphEmulator) -> None:
    beta = requests.get(f"{graph_emulator.graph_url}/beta/users", verify=graph_emulator.ca_bundle, timeout=10)
    assert beta.status_code == 501 and "/beta" in beta.json()["error"]["message"]
    other = requests.get(f"{graph_emulator.graph_url}/v2.0/users", verify=graph_emulator.ca_bundle, timeout=10)
    assert other.status_code == 400 and other.json()["error"]["message"] == "Invalid version: v2.0"


def test_bad_rules_are_refused_when_added(graph_emulator: GraphEmulator) -> None:
    with pytest.raises(ValueError, match="status"):
        graph_emulator.faults.add(status=404)
    with pytest.raises(ValueError, match="probability"):
        graph_emulator.faults.add(status=500, probability=2)
    with pytest.raises(ValueError, match="needs"):
        graph_emulator.faults.add("/token")
