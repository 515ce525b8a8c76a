"""The encoding characters a message declares in MSH-1 and MSH-2 (v2.5 2.5.4)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""  # v2.7+ fifth encoding character, usually '#'

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as written."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT = Delimiters()
