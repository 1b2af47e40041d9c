"""``ws.regimes``: the workspace's regime definitions (``forexgrid regimes`` calls these)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from forexgrid.scoring import RescoreReport
    from forexgrid.storage.records import RegimeInfo
    from forexgrid.workspace import Workspace

__all__ = ["RegimeChange", "WorkspaceRegimes"]

Rules = Mapping[str, str] | str


@dataclass(frozen=True)
class RegimeChange:
    """A regime as stored after a change, and the rescoring the change started (if any)."""

    regime: RegimeInfo
    rescore: RescoreReport | None = None

    def __repr__(self) -> str:
        state = "active" if self.regime.active else "inactive"
        lines = [f"Regime {self.regime.name!r} ({state}): {dict(self.regime.rules)}"]
        if self.rescore is not None:
            lines.append(self.rescore.summary())
        return "\n".join(lines)


class WorkspaceRegimes:
    """List, add, edit, delete and toggle regimes, and label bars with them.

    Adding a regime, editing its rules or activating it rescores the kept models in it from
    their files (no retraining) unless ``rescore=False``; :meth:`rescore` does it later.
    """

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace

    def list(self, *, active_only: bool = False) -> pd.DataFrame:
        """The regime definitions in creation order: name, active, default, rules,
        description."""
        import pandas as pd

        rows = [
            {
                "name": r.name,
                "active": r.active,
                "default": r.is_default,
                "rules": dict(r.rules),
                "description": r.description,
            }
            for r in self.infos(active_only=active_only)
        ]
        return pd.DataFrame(rows, columns=["name", "active", "default", "rules", "description"])

    def infos(self, *, active_only: bool = False) -> list[RegimeInfo]:
        """The regime definitions as stored (RegimeInfo records)."""
        from forexgrid import storage

        with self._workspace.session() as session:
            return storage.regimes_repo.list_regimes(session, active_only=active_only)

    def get(self, name: str) -> RegimeInfo:
        """One regime; an unknown name is an error listing the known ones."""
        from forexgrid import storage

        with self._workspace.session() as session:
            return storage.regimes_repo.get_regime(session, name)

    def add(
        self,
        name: str,
        rules: Rules,
        description: str = "",
        *,
        active: bool = True,
        rescore: bool = True,
    ) -> RegimeChange:
        """Add a regime; its rules (a mapping or JSON text of indicator -> condition, e.g.
        ``{"trend_strength": "> 0.5"}``) are validated first and nothing is stored if one is
        invalid (RuleError with the parser's message)."""
        from forexgrid import storage

        with self._workspace.session() as session:
            info = storage.regimes_repo.add_regime(
                session, name, rules, description, active=active
            )
        return RegimeChange(info, self.rescore([info.name]) if info.active and rescore else None)

    def edit(
        self,
        name: str,
        *,
        rules: Rules | None = None,
        description: str | None = None,
        new_name: str | None = None,
        rescore: bool = True,
    ) -> RegimeChange:
        """Change a regime's rules, description or name. New rules are a new version: the
        kept models are rescored under them (unless ``rescore=False``)."""
        from forexgrid import storage

        with self._workspace.session() as session:
            info = storage.regimes_repo.edit_regime(
                session, name, rules=rules, description=description, new_name=new_name
            )
        report = None
        if rules is not None and info.active and rescore:
            report = self.rescore([info.name])
        return RegimeChange(info, report)

    def delete(self, name: str) -> None:
        """Delete a regime (its best-model rows stay as history; a deleted default regime is
        not added back)."""
        from forexgrid import storage

        with self._workspace.session() as session:
            storage.regimes_repo.delete_regime(session, name)

    def toggle(self, name: str, *, rescore: bool = True) -> RegimeChange:
        """Switch a regime between active and inactive; activating it rescores the kept
        models in it (runs trained while it was inactive were not scored in it)."""
        from forexgrid import storage

        with self._workspace.session() as session:
            info = storage.regimes_repo.toggle_regime(session, name)
        return RegimeChange(info, self.rescore([info.name]) if info.active and rescore else None)

    def rescore(self, names: Iterable[str] | None = None) -> RescoreReport:
        """Score the kept models under the current rules of ``names`` (default: every active
        regime) from their files and rebuild those lists; safe to repeat."""
        from forexgrid import scoring

        return scoring.rescore_regimes(self._workspace.settings, list(names) if names else None)

    def label(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Label each bar with the workspace's active regimes: one bool column each.

        Causal: a bar's label uses that bar and earlier ones only, with the configuration's
        indicator windows (warm-up bars are in no regime).
        """
        from forexgrid.core.regimes import label_regimes

        regimes = [info.to_regime() for info in self.infos(active_only=True)]
        return label_regimes(bars, regimes, **dict(self._workspace.settings.regimes))

    def __repr__(self) -> str:
        return repr(self.list())

    def _repr_html_(self) -> str:
        return self.list().to_html(index=False)
