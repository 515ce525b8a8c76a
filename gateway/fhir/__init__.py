"""FHIR R4 REST: the route table, one handler per interaction, OperationOutcomes (R4 http.html)."""
