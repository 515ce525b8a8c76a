"""Structured visit summaries as FHIR documents (FHIR R4 documents.html): gathering, narrative and assembly."""
