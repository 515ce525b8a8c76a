"""Markup in HL7 v2 text never becomes markup in FHIR narratives (issue 7, part 3; R4 narrative.html#xhtml:
no script, no event attributes). Messages go in through the ingest path (the Ingestor, as MLLP and files
use it), then Encounter/$summary is read and every narrative div is checked, in both languages."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from gateway.fhir.context import REPOSITORY_KEY
from gateway.ingest import Ingestor
from gateway.settings import Settings
from tests.gateway.test_everything import FHIR, message, obx, only, pid, pv1, segment

SCRIPT = "<script>alert(1)</script>"
ACTIVE_ELEMENTS = {"script", "iframe", "img", "svg", "object", "embed", "style", "link", "meta", "form", "input", "a"}


def hostile_messages() -> list[bytes]:
    """An admission and a result whose names, reasons, values and notes carry markup, some of it via HL7 escapes."""
    admit = "20260301080000+0800"
    name = segment("PID", {1: "1", 3: "MRNX^^^HOSP^MR", 5: f"{SCRIPT}^<img src=x onerror=alert(2)>", 7: "19800101", 8: "F"})
    reason = segment("PV2", {3: "^Chest pain \\X3C\\script\\X3E\\alert(3)\\X3C\\/script\\X3E\\"})
    return [
        message("XSS1", "ADT^A01^ADT_A01", "20260301080500+0800", segment("EVN", {1: "A01", 2: admit}),
                name, pv1(admit=admit, visit="VX1"), reason,
                segment("AL1", {1: "1", 2: "DA", 3: "70618^Penicillin <iframe src=//evil>^RXNORM", 4: "SV",
                                5: "]]><svg onload=alert(4)>"}),
                segment("DG1", {1: "1", 3: "I10^<style>body{display:none}</style>Hypertension^I10", 6: "A"}),
                segment("NTE", {1: "1", 3: f"note {SCRIPT}"})),
        message("XSS2", "ORU^R01^ORU_R01", "20260302090000+0800", name, pv1(visit="VX1"), reason,
                segment("OBR", {1: "1", 2: "PX1", 3: "FX1", 4: "24331-1^<a href=javascript:alert(5)>Lipids</a>^LN",
                                7: "20260302080000+0800", 25: "F"}),
                obx(1, "2093-3", "Cholesterol <b onmouseover=alert(6)>total</b>", "5.2", "mmol/L", "20260302080000+0800"),
                segment("OBX", {1: "2", 2: "ST", 3: "8251-1^Comment^LN", 5: f"free text {SCRIPT}", 11: "F",
                                14: "20260302080000+0800"}),
                segment("NTE", {1: "1", 3: "<object data=x></object> checked"}),
                sender="LIS"),
    ]


@pytest.fixture
def encounter_id(client: FlaskClient) -> Iterator[str]:
    ingestor = Ingestor(client.application.extensions[REPOSITORY_KEY], Settings())
    for raw in hostile_messages():
        result = ingestor.ingest(raw, peer="test", transport="file")
        assert result.ack_code == "AA", result.error
    yield only(client, "Encounter?identifier=VX1")["id"]


def _divs(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "div" and isinstance(item, str):
                yield item
            else:
                yield from _divs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _divs(item)


def _assert_inert(div: str) -> None:
    root = ET.fromstring(div)  # well-formed XHTML, or this raises
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        assert tag not in ACTIVE_ELEMENTS, div
        assert not [name for name in element.attrib if name.lower().startswith("on") or "href" in name.lower()], div


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_every_summary_narrative_escapes_hl7_markup(client: FlaskClient, encounter_id: str, language: str) -> None:
    response = client.get(f"/fhir/Encounter/{encounter_id}/$summary?_language={language}", headers=FHIR)
    assert response.status_code == 200, response.get_data(as_text=True)
    divs = list(_divs(response.get_json()))
    assert len(divs) >= 5
    for div in divs:
        _assert_inert(div)
    text = "\n".join(divs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the patient's text is kept, as text
    assert "&lt;script&gt;alert(3)" in text  # HL7 \X3C\ escapes decode to '<' and are escaped again
    assert "<script" not in text and "<svg" not in text and "<iframe" not in text


def test_the_printable_summary_page_escapes_hl7_markup(client: FlaskClient, encounter_id: str) -> None:
    response = client.get(f"/fhir/Encounter/{encounter_id}/$summary?_format=html")
    if response.status_code == 406:
        pytest.skip("no HTML view of $summary in this build")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for needle in ("<script>alert", "<svg", "<iframe", "<img", "<object", "<b onmouseover"):
        assert needle not in page
