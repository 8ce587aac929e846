"""A finding: one broken rule at one place, with a message in Vietnamese and English."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: str
    message_vi: str
    message_en: str
    sheet: str = ""
    cell: str = ""
    code: str = ""
    value: str = ""

    @classmethod
    def make(
        cls,
        rule_id: str,
        severity: str,
        *,
        message_vi: str,
        message_en: str,
        sheet: str = "",
        cell: str = "",
        code: str = "",
        value: object = "",
    ) -> Finding:
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        return cls(
            rule_id,
            severity,
            message_vi,
            message_en,
            sheet,
            cell,
            code,
            "" if value is None else str(value),
        )

    @property
    def location(self) -> str:
        """ "Số liệu!E14", or the sheet alone, or ""."""
        if self.sheet and self.cell:
            return f"{self.sheet}!{self.cell}"
        return self.sheet

    def as_row(self) -> dict[str, str]:
        return asdict(self) | {"location": self.location}
