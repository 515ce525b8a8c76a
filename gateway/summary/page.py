"""The human view of a summary document: one printable, phone-readable HTML5 page made from the document's own
narratives (FHIR R4 documents.html#presentation: a document is shown from Composition.text and each section.text).

The narratives were generated here with every source text escaped (narrative.py), so they are placed as they are;
titles come from the Composition and are escaped again. The page carries no scripts and loads nothing external.
"""
from __future__ import annotations

from html import escape

STYLE = """
:root{color-scheme:light}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:0 auto;max-width:60rem;padding:1rem;color:#111;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%;font-size:.95rem}th,td{text-align:left;vertical-align:top;padding:.3rem .4rem;
border-bottom:1px solid #ddd;overflow-wrap:anywhere}th{background:#f2f2f2}
section{break-inside:avoid-page}footer{margin-top:2rem;font-size:.8rem;color:#555}
@media (max-width:40rem){thead{display:none}tr{display:block;border-bottom:1px solid #bbb;padding:.3rem 0}
td{display:block;border:0;padding:.1rem .2rem}}
@media print{body{max-width:none;padding:0;font-size:11pt}h2{break-after:avoid-page}tr{break-inside:avoid}
th{background:none}footer{color:#000}}
"""


def _div(narrative: dict | None) -> str:
    return str((narrative or {}).get("div") or "")


def document_page(document: dict) -> str:
    """A full HTML5 page for a document Bundle: the Composition's narrative, then each section's title and narrative."""
    composition = document["entry"][0]["resource"]
    language = escape(str(composition.get("language") or "en"))
    parts = [f"<section>{_div(composition.get('text'))}</section>"]
    for section in composition.get("section") or []:
        parts.append(f"<section><h2>{escape(str(section.get('title') or ''))}</h2>{_div(section.get('text'))}</section>")
    identifier = escape(str((document.get("identifier") or {}).get("value") or ""))
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(str(composition.get('title') or ''))}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{''.join(parts)}\n</main>\n"
        f"<footer>{escape(str(document.get('timestamp') or ''))} · {identifier}</footer>\n</body>\n</html>\n"
    )
