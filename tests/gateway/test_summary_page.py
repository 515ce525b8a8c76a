"""The human view of the summaries: $summary?_format=html / Accept: text/html as one printable HTML5 page, with every
text from HL7 v2 shown as text and never as markup (FHIR R4 documents.html#presentation, narrative.html#security)."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from tests.gateway.test_record_journey import (  # noqa: F401  (fixtures)
    DISCHARGE_NOTE, HOSTILE_FAMILY, HOSTILE_GIVEN, HOSTILE_NOTE, HOSTILE_VALUE, ids, journey_app,
)

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Page(HTMLParser):
    """Every element, attribute and text node of a page, as a browser's tokenizer sees them."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.declarations: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def words(self) -> str:
        return "".join(self.text)


def _page(client: FlaskClient, path: str, **headers: str) -> tuple[str, Page]:
    response = client.get(f"/fhir/{path}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "text/html; charset=utf-8"
    markup = response.get_data(as_text=True)
    return markup, Page(markup)


@pytest.mark.parametrize("kind", ["Encounter", "Patient"])
def test_page_is_a_self_contained_printable_html5_page(client: FlaskClient, ids: dict[str, str], kind: str) -> None:
    target = ids["V100"] if kind == "Encounter" else ids["MRN1"]
    markup, page = _page(client, f"{kind}/{target}/$summary?_format=html&_language=zh-CN")
    assert markup.startswith("<!DOCTYPE html>") and page.declarations == ["DOCTYPE html"]
    html = [attrs for tag, attrs in page.tags if tag == "html"]
    assert html == [{"lang": "zh-CN"}]
    metas = [attrs for tag, attrs in page.tags if tag == "meta"]
    assert {"charset": "utf-8"} in metas
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    assert "@media print" in markup
    # Nothing runs and nothing is fetched: no script, no link/img/iframe, no URL-bearing attribute.
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "form", "base"}
    assert all(not ({"src", "href", "action", "style"} & set(attrs)) for _, attrs in page.tags)
    headings = [text for text in page.text if text.strip()]
    assert ("出院小结" if kind == "Encounter" else "患者健康摘要") in headings


@pytest.mark.parametrize("kind", ["Encounter", "Patient"])
def test_markup_in_names_notes_and_values_stays_text(client: FlaskClient, ids: dict[str, str], kind: str) -> None:
    target = ids["V100"] if kind == "Encounter" else ids["MRN1"]
    markup, page = _page(client, f"{kind}/{target}/$summary", Accept="text/html")
    assert not any(tag in ("script", "img") for tag, _ in page.tags)
    assert all(not name.startswith("on") for _, attrs in page.tags for name in attrs)
    words = page.words()
    # The payloads arrive as the words the sender wrote: shown, not obeyed.
    assert "王<script>alert(1)</script>" in words and HOSTILE_GIVEN in words
    assert HOSTILE_VALUE in words
    if kind == "Encounter":
        assert HOSTILE_NOTE in words and DISCHARGE_NOTE in words
    assert "<script>" not in markup.replace("&lt;script&gt;", "") and 'onmouseover="' not in markup
    assert HOSTILE_FAMILY not in markup  # only its escaped form is in the page


def test_a_browser_gets_the_page_and_fhir_clients_get_json(client: FlaskClient, ids: dict[str, str]) -> None:
    path = f"/fhir/Patient/{ids['MRN1']}/$summary"
    browser = client.get(path, headers={"Accept": BROWSER, "Accept-Language": "en"})
    assert browser.content_type.startswith("text/html") and browser.headers["Content-Language"] == "en"
    assert "Accept" in browser.headers["Vary"]
    assert browser.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert browser.headers["X-Content-Type-Options"] == "nosniff"
    for accept in ("*/*", "application/fhir+json", "application/fhir+json, text/html;q=0.5"):
        response = client.get(path, headers={"Accept": accept})
        assert response.status_code == 200 and response.content_type.startswith("application/fhir+json"), accept
        assert response.get_json()["type"] == "document"
    assert client.get(path).content_type.startswith("application/fhir+json")  # no Accept at all: JSON


@pytest.mark.parametrize("path", ["Patient/{MRN1}", "Patient/{MRN1}/$everything", "Observation"])
def test_html_is_only_for_the_summaries(client: FlaskClient, ids: dict[str, str], path: str) -> None:
    url = "/fhir/" + path.format(**ids)
    for response in (client.get(url, headers={"Accept": "text/html"}), client.get(f"{url}?_format=html")):
        assert response.status_code == 406
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_unknown_patient_summary_is_404_even_as_html(client: FlaskClient, ids: dict[str, str]) -> None:
    response = client.get("/fhir/Patient/nope/$summary?_format=html")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"
