"""conformance.bundle_rules: bdl-1..bdl-12 and the transaction rules (bundle.html, http.html)."""
from __future__ import annotations

from conformance.validation import validate_bundle


def _rules(bundle):
    return {(issue.rule, issue.expression) for issue in validate_bundle(bundle) if issue.is_error}


PATIENT = {"resourceType": "Patient", "id": "p"}


def test_total_and_search_only_in_searchset(bundle):
    bundle["total"] = 30
    bundle["entry"][0]["search"] = {"mode": "match"}
    assert {("bdl-1", "Bundle.total"), ("bdl-2", "Bundle.entry[0].search")} <= _rules(bundle)


def test_request_required_in_transaction_and_prohibited_elsewhere(bundle):
    del bundle["entry"][2]["request"]
    assert ("bdl-3", "Bundle.entry[2].request") in _rules(bundle)
    collection = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": PATIENT, "request": {"method": "PUT", "url": "Patient/p"}}]}
    assert _rules(collection) == {("bdl-3", "Bundle.entry[0].request")}


def test_response_required_in_transaction_response():
    response = {"resourceType": "Bundle", "type": "transaction-response", "entry": [{"resource": PATIENT}]}
    assert _rules(response) == {("bdl-4", "Bundle.entry[0].response")}


def test_entry_needs_resource_request_or_response():
    assert _rules({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:x"}]}) \
        == {("bdl-5", "Bundle.entry[0]")}


def test_full_url_unique_and_not_versioned(bundle):
    bundle["entry"][3]["fullUrl"] = bundle["entry"][2]["fullUrl"]
    bundle["entry"][4]["fullUrl"] = "http://example.org/fhir/Observation/obs-0/_history/1"
    found = _rules(bundle)
    assert {("bdl-7", "Bundle.entry[3].fullUrl"), ("bdl-8", "Bundle.entry[4].fullUrl")} <= found


def test_restful_full_url_agrees_with_the_resource():
    collection = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"fullUrl": "http://example.org/fhir/Patient/q", "resource": PATIENT}]}
    assert _rules(collection) == {("fullurl-id", "Bundle.entry[0].fullUrl")}


def test_put_url_agrees_with_the_resource(bundle):
    bundle["entry"][0]["request"]["url"] = "Patient/other"
    bundle["entry"][1]["request"] = {"method": "PUT", "url": "Patient/org-1"}
    found = _rules(bundle)
    assert {("request-url", "Bundle.entry[0].resource.id"), ("request-url", "Bundle.entry[1].request.url")} <= found


def test_document_rules():
    document = {"resourceType": "Bundle", "type": "document", "entry": [{"fullUrl": "urn:uuid:1", "resource": PATIENT}]}
    assert _rules(document) == {("bdl-9", "Bundle.identifier"), ("bdl-10", "Bundle.timestamp"),
                                ("bdl-11", "Bundle.entry[0].resource")}


def test_message_starts_with_message_header():
    message = {"resourceType": "Bundle", "type": "message", "entry": [{"fullUrl": "urn:uuid:1", "resource": PATIENT}]}
    assert _rules(message) == {("bdl-12", "Bundle.entry[0].resource")}
