"""`vault scopes` (the catalog) and `vault preview` (what a company would receive, and why)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated

import typer

from vault import scopes
from vault.cli import _format
from vault.cli._common import (
    HomeOption,
    JsonOption,
    console,
    new_app,
    print_json,
)

app = new_app()


@app.command("scopes")
def list_scopes(json_output: JsonOption = False) -> None:
    """List the scope catalog: what a company can ask for, how each is coarsened, and each
    noisy scope's privacy figure (ε of a whole answer)."""
    from vault import privacy

    figures = {entry.name: privacy.scope_privacy(entry.name) for entry in scopes.CATALOG}
    if json_output:
        print_json([
            {**asdict(entry), "privacy": asdict(figure) if figure is not None else None}
            for entry, figure in zip(scopes.CATALOG, figures.values(), strict=True)
        ])
        return
    table = _format.Listing(f"Scope catalog v{scopes.CATALOG_VERSION}",
                            ["bit", "name", "description", "sensitivity", "noisy (ε)",
                             "transform"], right=("bit",),
                            caption=f"catalog hash 0x{scopes.catalog_hash().hex()}")
    for entry in scopes.CATALOG:
        figure = figures[entry.name]
        noisy = f"yes ({figure.epsilon_per_answer:.1f})" if figure is not None else "no"
        table.add_row(str(entry.bit), entry.name, entry.description, entry.sensitivity,
                      noisy, entry.transform)
    console.print(table)


@app.command("preview")
def preview(
    names: Annotated[list[str], typer.Argument(metavar="SCOPE...", help="Scope names.")],
    released: Annotated[
        bool,
        typer.Option("--released", help="Apply the release noise: exactly what every company "
                                        "with a grant receives."),
    ] = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show exactly what a company would receive for SCOPE... now, and why (which facts and
    how many events of each kind contributed — counts only)."""
    from vault.cli._records import open_records

    with open_records(home) as records:
        report = records.preview(list(names), released=released, now=int(time.time()))
    rows = report["scopes"]
    if json_output:
        print_json(report)
        return
    heading = "with the release noise" if released else "before noise (--released applies it)"
    console.print(f"What a company would receive now, {heading}:", markup=False)
    for row in rows:
        console.print(f"\n[bold]{row['scope']}[/bold] (bit {row['bit']}, "
                      f"{row['sensitivity']} sensitivity)")
        console.print(f"  value: {json.dumps(row['value'], ensure_ascii=False)}", markup=False)
        console.print(f"  how:   {row['transform']}", markup=False)
        if row["noisy"]:
            console.print("  noise: each entry swapped with 5 % chance, fixed per true entry: "
                          "every company gets the same answer", markup=False)
        facts = ", ".join(row["basis"]["facts"]) or "none"
        events = ", ".join(f"{n} {kind}" for kind, n in row["basis"]["events"].items()) or "none"
        console.print(f"  from:  facts: {facts}; events: {events}", markup=False)
    console.print("\n" + _format.coverage_line(report["coverage"]), markup=False)
