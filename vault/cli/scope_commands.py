"""`vault scopes` (the catalog) and `vault preview` (what a company would receive, and why)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from vault import errors, scopes
from vault.cli._common import (
    HomeOption,
    JsonOption,
    console,
    new_app,
    print_json,
    read_passphrase,
    settings_for,
)

app = new_app()


@app.command("scopes")
def list_scopes(json_output: JsonOption = False) -> None:
    """List the scope catalog: what a company can ask for, and how each is coarsened."""
    if json_output:
        print_json([asdict(entry) for entry in scopes.CATALOG])
        return
    table = Table(title=f"Scope catalog v{scopes.CATALOG_VERSION}",
                  caption=f"catalog hash 0x{scopes.catalog_hash().hex()}")
    table.add_column("bit", justify="right")
    table.add_column("name", no_wrap=True)
    for column in ("description", "sensitivity", "noisy", "transform"):
        table.add_column(column, overflow="fold")
    for entry in scopes.CATALOG:
        table.add_row(str(entry.bit), entry.name, entry.description, entry.sensitivity,
                      "yes" if entry.noisy else "no", entry.transform)
    console.print(table)


def _company(address: str | None) -> str | None:
    if address is None:
        return None
    from eth_utils.address import is_hex_address, to_checksum_address

    if not is_hex_address(address):
        raise errors.InputError("--company must be a 0x-prefixed 20-byte hex address")
    return str(to_checksum_address(address))


@app.command("preview")
def preview(
    names: Annotated[list[str], typer.Argument(metavar="SCOPE...", help="Scope names.")],
    company: Annotated[
        str | None,
        typer.Option("--company", help="The company's address: apply its per-epoch noise."),
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show exactly what a company would receive for SCOPE... now, and why (which facts and
    how many events of each kind contributed — counts only)."""
    from vault import privacy
    from vault.store import Vault

    wanted = [scopes.scope(name) for name in dict.fromkeys(names)]  # UnknownScope first
    who = _company(company)
    now = int(time.time())
    with Vault.open(settings_for(home).home, read_passphrase()) as vault:
        values = vault.derived([entry.name for entry in wanted])
        secret = vault.secret("noise") if who is not None else b""
        rows: list[dict[str, Any]] = []
        for entry in wanted:
            value = values[entry.name]
            if who is not None:
                value = privacy.release_value(entry, value, company=who, now=now,
                                              secret=secret)
            rows.append({
                "scope": entry.name, "bit": entry.bit, "sensitivity": entry.sensitivity,
                "noisy": entry.noisy, "transform": entry.transform, "value": value,
                "basis": vault.derivation_basis(entry.name),
            })
    report = {"company": who, "at": now, "epoch": privacy.epoch_of(now), "scopes": rows}
    if json_output:
        print_json(report)
        return
    heading = f"for {who}" if who else "before per-company noise (pass --company to apply it)"
    console.print(f"What a company would receive now, {heading}:", markup=False)
    for row in rows:
        console.print(f"\n[bold]{row['scope']}[/bold] (bit {row['bit']}, "
                      f"{row['sensitivity']} sensitivity)")
        console.print(f"  value: {json.dumps(row['value'], ensure_ascii=False)}", markup=False)
        console.print(f"  how:   {row['transform']}", markup=False)
        if row["noisy"]:
            console.print("  noise: each entry swapped with 5 % chance, fixed per company "
                          f"for epoch {report['epoch']} (7 days)", markup=False)
        facts = ", ".join(row["basis"]["facts"]) or "none"
        events = ", ".join(f"{n} {kind}" for kind, n in row["basis"]["events"].items()) or "none"
        console.print(f"  from:  facts: {facts}; events: {events}", markup=False)
