"""conformance.narrative: txt-1 (permitted XHTML only) and txt-2 (some content), as the visit summaries rely on."""
from __future__ import annotations

import pytest

from conformance.narrative import check_narrative_div
from conformance.validation import validate_resource

NS = 'xmlns="http://www.w3.org/1999/xhtml"'


def _problems(div):
    return [(issue.rule, issue.diagnostics) for issue in check_narrative_div(div, "Composition.text.div")]


@pytest.mark.parametrize("div", [
    f'<div {NS}><p>王小红 &amp; family&nbsp;<b>bold</b></p></div>',
    f'<div {NS}><table class="grid"><thead><tr><th>Test</th></tr></thead><tbody><tr><td colspan="2">Glucose'
    '</td></tr></tbody></table></div>',
    f'<div {NS} xml:lang="zh-CN" lang="zh-CN"><a href="http://hl7.org/fhir">spec</a> <a name="top">top</a>'
    '<img src="#photo" alt="photo"/><img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/></div>',
    f'<div {NS}><span style="color: red; font-weight: bold">!</span><!-- a comment --></div>',
])
def test_permitted_narrative(div):
    assert _problems(div) == []


@pytest.mark.parametrize("div, fragment", [
    ('<div><p>no namespace</p></div>', "XHTML namespace"),
    (f'<p {NS}>not a div</p>', "root must be a <div>"),
    (f'<div {NS}><p>unclosed</div>', "not well-formed"),
    (f'<div {NS}><script>alert(1)</script>x</div>', "<script>"),
    (f'<div {NS}><iframe src="http://evil.example"/>x</div>', "<iframe>"),
    (f'<div {NS}><form><input/></form>x</div>', "<form>"),
    (f'<div {NS}><link rel="stylesheet" href="http://x/s.css"/>x</div>', "<link>"),
    (f'<div {NS}><p onclick="steal()">x</p></div>', "Event handler attribute onclick"),
    (f'<div {NS}><a href="javascript:alert(1)">x</a></div>', "'javascript:'"),
    (f'<div {NS}><a href="java&#x09;script:alert(1)">x</a></div>', "'javascript:'"),
    (f'<div {NS}><a href="data:text/html,x">x</a></div>', "data: URLs"),
    (f'<div {NS}><img src="file:///etc/passwd"/>x</div>', "'file:'"),
    (f'<div {NS}><p style="background: url(http://tracker.example/p.gif)">x</p></div>', "external content"),
    (f'<div {NS}><p data-x="1">x</p></div>', "Attribute data-x"),
    (f'<div {NS} xmlns:svg="http://www.w3.org/2000/svg"><svg:svg/>x</div>', "not in the XHTML namespace"),
    (f'<?xml-stylesheet href="x"?><div {NS}>x</div>', "processing instructions"),
    (f'<!DOCTYPE div [<!ENTITY a "aaaa">]><div {NS}>&a;</div>', "DOCTYPE"),
])
def test_txt_1_refuses(div, fragment):
    problems = _problems(div)
    assert problems and all(rule == "txt-1" for rule, _ in problems)
    assert any(fragment in text for _, text in problems), problems


@pytest.mark.parametrize("div", [f"<div {NS}>   </div>", f"<div {NS}><p> </p><br/></div>"])
def test_txt_2_needs_content(div):
    assert [rule for rule, _ in _problems(div)] == ["txt-2"]


def test_narrative_issues_are_located_at_the_div_of_any_resource():
    patient = {"resourceType": "Patient", "text": {"status": "generated", "div": f"<div {NS}><script/></div>"}}
    issues = validate_resource(patient)
    assert {(issue.rule, issue.expression) for issue in issues} == {("txt-1", "Patient.text.div"),
                                                                    ("txt-2", "Patient.text.div")}
    patient["text"]["status"] = "made-up"
    assert "Patient.text.status" in {issue.expression for issue in validate_resource(patient)}
