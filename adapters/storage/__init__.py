"""Storage backends behind one repository interface named after FHIR interactions."""
