"""The mixer's plan: per class, the real count, what the strategy wants and what is added."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClassPlan:
    label: Any  # the dataset's own label value
    name: str
    real: int
    wanted: int  # what the strategy asks to add
    synthetic: int  # what will be added (wanted, capped by ratio, 0 if class_map skips it)
    model_class: int | None  # augmenter class index that produces it
    replaced: int = 0  # real items served as synthetic ones each epoch (replace=p)

    @property
    def share(self) -> float:
        total = self.real + self.synthetic
        return self.synthetic / total if total else 0.0


class MixPlan:
    """Per class: real count, what the strategy wants, what is added. ``print(plan)`` shows it."""

    def __init__(self, rows: list[ClassPlan], strategy: Any, ratio: float | None, replace: float = 0.0,
                 synthetic_epochs: int | None = None):
        self.rows = rows
        self.strategy = strategy
        self.ratio = ratio
        self.replace = replace
        self.synthetic_epochs = synthetic_epochs

    @property
    def replaced(self) -> dict[str, int]:
        return {r.name: r.replaced for r in self.rows}

    @property
    def real(self) -> dict[str, int]:
        return {r.name: r.real for r in self.rows}

    @property
    def synthetic(self) -> dict[str, int]:
        return {r.name: r.synthetic for r in self.rows}

    @property
    def n_real(self) -> int:
        return sum(r.real for r in self.rows)

    @property
    def n_synthetic(self) -> int:
        return sum(r.synthetic for r in self.rows)

    def __len__(self) -> int:
        return self.n_real + self.n_synthetic

    def to_dict(self) -> dict[str, dict[str, int]]:
        """Per class: real, wanted, synthetic (and replaced, only when replace > 0)."""
        extra = (lambda r: {"replaced": r.replaced}) if self.replace else (lambda r: {})
        return {r.name: {"real": r.real, "wanted": r.wanted, "synthetic": r.synthetic, **extra(r)}
                for r in self.rows}

    def __str__(self) -> str:
        w = max([5] + [len(r.name) for r in self.rows])
        options = "".join([f", replace={self.replace}" if self.replace else "",
                           f", synthetic_epochs={self.synthetic_epochs}" if self.synthetic_epochs else ""])
        repl = self.replace > 0
        lines = [f"SyntheticMix plan (strategy={self.strategy!r}, ratio={self.ratio}{options})",
                 f"{'class':<{w}}  {'real':>6}  {'wanted':>6}  {'synth':>6}  {'total':>6}  share"
                 + ("  replaced" if repl else "")]
        for r in self.rows:
            lines.append(f"{r.name:<{w}}  {r.real:>6}  {r.wanted:>6}  {r.synthetic:>6}  "
                         f"{r.real + r.synthetic:>6}  {r.share:5.1%}" + (f"  {r.replaced:>8}" if repl else ""))
        n_repl = sum(r.replaced for r in self.rows)
        lines.append(f"{'all':<{w}}  {self.n_real:>6}  {'':>6}  {self.n_synthetic:>6}  {len(self):>6}"
                     + (f"  {'':5}  {n_repl:>8}" if repl else ""))
        if repl:
            lines.append(f"replace={self.replace}: each epoch {n_repl} real items (that share of every class) "
                         "are served as synthetic images of their class")
        if self.synthetic_epochs:
            lines.append(f"synthetic_epochs={self.synthetic_epochs}: from epoch {self.synthetic_epochs} on "
                         "(set_epoch), real items only: added items are real items of their class")
        return "\n".join(lines)

    __repr__ = __str__
