"""The encoding characters a message declares in MSH-1 and MSH-2 (v2.5 2.5.4), and the character set its
`\\Xhh\\` escapes are read in (MSH-18, v2.5 2.7.5)."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""  # v2.7+ fifth encoding character, usually '#'
    # Python codec of MSH-18 for the bytes of \Xhh\ ("" = UTF-8, else Latin-1); not an encoding character
    hex_codec: str = dataclass_field(default="", compare=False)

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as written."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT = Delimiters()
