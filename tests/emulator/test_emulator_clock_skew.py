"""Assertions from a client whose clock is a little off are accepted; far off, they are not."""

from __future__ import annotations

import time

import pytest
from emulator_testkit import Signer, aadsts_codes, make_assertion, post_token, token_form

from airflow_provider_graphcert.testing import GraphEmulator


def _post_at(emulator: GraphEmulator, signer: Signer, client_time: float) -> tuple[int, list[int]]:
    tenant = emulator.add_tenant()
    app = emulator.add_app(tenant, certificate=signer.certificate)
    assertion = make_assertion(
        signer, client_id=app.client_id, audience=emulator.token_endpoint(tenant), now=client_time
    )
    response = post_token(
        emulator, tenant.tenant_id, token_form(app.client_id, assertion, f"{emulator.graph_resource}/.default")
    )
    return response.status_code, aadsts_codes(response) if response.status_code != 200 else []


@pytest.mark.parametrize(("client_ahead_by", "expected"), [(120, (200, [])), (400, (401, [700024]))])
def test_a_client_clock_ahead_of_entra(
    graph_emulator: GraphEmulator, signer: Signer, client_ahead_by: float, expected: tuple[int, list[int]]
) -> None:
    # iat and nbf in the future: within the 300 s tolerance is fine, beyond it is not.
    assert _post_at(graph_emulator, signer, time.time() + client_ahead_by) == expected


@pytest.mark.parametrize(("client_behind_by", "expected"), [(700, (200, [])), (1000, (401, [700024]))])
def test_a_client_clock_behind_entra(
    graph_emulator: GraphEmulator, signer: Signer, client_behind_by: float, expected: tuple[int, list[int]]
) -> None:
    # exp is iat + 600: 700 s behind is 100 s past exp (tolerated), 1000 s is 400 s past.
    assert _post_at(graph_emulator, signer, time.time() - client_behind_by) == expected


def test_the_emulator_clock_can_be_moved_instead(graph_emulator: GraphEmulator, signer: Signer) -> None:
    graph_emulator.clock_offset = -400  # Entra's clock behind: the client's nbf looks 400 s early

    assert _post_at(graph_emulator, signer, time.time()) == (401, [700024])

    graph_emulator.clock_skew_tolerance = 600
    assert _post_at(graph_emulator, signer, time.time()) == (200, [])
