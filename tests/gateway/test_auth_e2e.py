"""End to end: the real `pulsebridge serve --auth-secret` process, tokens minted by `pulsebridge token`, used with
requests and fhirpy; and the refusal to bind other hosts without authentication (issue 7, "Proof")."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.gateway.auth_records import SECRET
from tests.gateway.served_gateway import ServedGateway, free_port

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "samples" / "adt-a01-zh.hl7"


def pulsebridge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def token(*args: str) -> str:
    """A token from `pulsebridge token`, the secret taken from PULSEBRIDGE_AUTH_SECRET like the server's."""
    minted = pulsebridge("token", *args, env={"PULSEBRIDGE_AUTH_SECRET": SECRET})
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    served = ServedGateway(tmp_path_factory.mktemp("auth-e2e"), "--auth-secret", SECRET, env={"PULSEBRIDGE_AUDIT": "off"})
    yield served
    served.stop()


def test_start_up_says_authentication_is_on(gateway: ServedGateway) -> None:
    assert "authentication: on (HS256 secret)" in gateway.output


def test_tokens_from_the_cli_open_the_api_as_their_scopes_say(gateway: ServedGateway) -> None:
    fhir = f"{gateway.base}/fhir"
    ingest = {"Authorization": f"Bearer {token('--scope', 'system/Bundle.c', '--subject', 'his-engine')}"}
    admin = {"Authorization": f"Bearer {token('--scope', 'system/*.cruds')}"}

    assert requests.get(f"{fhir}/Patient", timeout=10).status_code == 401
    assert requests.post(f"{gateway.base}/hl7/v2", data=SAMPLE.read_bytes(), timeout=10).status_code == 401
    ack = requests.post(f"{gateway.base}/hl7/v2", data=SAMPLE.read_bytes(), headers=ingest, timeout=30)
    assert ack.status_code == 200 and ("MSA|AA" in ack.text or "MSA|CA" in ack.text)
    assert requests.get(f"{fhir}/Patient", headers=ingest, timeout=10).status_code == 403  # ingest only: no reads

    patients = requests.get(f"{fhir}/Patient", headers=admin, timeout=10).json()
    patient_id = patients["entry"][0]["resource"]["id"]
    other = requests.put(f"{fhir}/Patient/someone-else", json={"resourceType": "Patient", "id": "someone-else", "gender": "male"},
                         headers=admin, timeout=10)
    assert other.status_code == 201

    own = {"Authorization": f"Bearer {token('--scope', 'patient/*.rs', '--patient', patient_id, '--expires', '10m')}"}
    everything = requests.get(f"{fhir}/Patient/{patient_id}/$everything", headers=own, timeout=30)
    assert everything.status_code == 200
    assert "Encounter" in {entry["resource"]["resourceType"] for entry in everything.json()["entry"]}
    assert "someone-else" not in everything.text
    assert requests.get(f"{fhir}/Patient/someone-else", headers=own, timeout=10).status_code == 404
    searched = requests.get(f"{fhir}/Patient", headers=own, timeout=10).json()
    assert [entry["resource"]["id"] for entry in searched["entry"]] == [patient_id]
    assert requests.get(f"{gateway.base}/.well-known/smart-configuration", timeout=10).json()["capabilities"]


def test_fhirpy_with_a_bearer_token(gateway: ServedGateway) -> None:
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(f"{gateway.base}/fhir", authorization=f"Bearer {token('--scope', 'user/*.cruds')}")
    practitioner = client.resource("Practitioner", name=[{"family": "Li"}])
    practitioner.save()
    assert client.reference("Practitioner", practitioner.id).to_resource()["name"][0]["family"] == "Li"
    reader = SyncFHIRClient(f"{gateway.base}/fhir", authorization=f"Bearer {token('--scope', 'user/*.rs')}")
    with pytest.raises(Exception, match="403|forbidden|scopes"):
        reader.resource("Practitioner", name=[{"family": "Wu"}]).save()


def test_no_authentication_refuses_to_bind_other_hosts() -> None:
    refused = pulsebridge("serve", "--http", f"0.0.0.0:{free_port()}", "--mllp", "off", env={"PULSEBRIDGE_AUTH_SECRET": ""})
    assert refused.returncode == 2
    assert "reachable from other hosts with no authentication" in refused.stderr and "--insecure" in refused.stderr
    mllp = pulsebridge("serve", "--mllp", f"0.0.0.0:{free_port()}", "--mllp-allow", "127.0.0.1", env={"PULSEBRIDGE_AUTH_SECRET": ""})
    assert mllp.returncode == 2 and "--mllp 0.0.0.0" in mllp.stderr


def test_without_authentication_it_says_loopback_only(tmp_path: Path) -> None:
    served = ServedGateway(tmp_path, env={"PULSEBRIDGE_AUTH_SECRET": "", "PULSEBRIDGE_AUDIT": "off"})
    try:
        assert requests.get(f"{served.base}/fhir/Patient", timeout=10).status_code == 200
    finally:
        output = served.stop()
    assert "authentication: off; listening on loopback only" in output
