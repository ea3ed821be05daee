"""`vault genres`: teach the vault the genres of your artists, channels and series.

Spotify's and Netflix's exports carry no genres, and the vault's built-in maps know only
well-known names; what you teach is stored sealed in the vault, applied to everything
already imported (one re-fold of the events) and to every later import, and wins over the
built-in maps.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json
from vault.cli._records import open_records

app = new_app("Your own genres for artists, channels and series (they feed preferences).")

KindOption = Annotated[str, typer.Option(
    "--for", metavar="artist|channel|series",
    help="What NAME is: an artist (music genre) or a channel or series (video genre).")]


@app.command("set")
def set_genre(
    name: Annotated[str, typer.Argument(help="The artist, channel or series, as exported.")],
    genre: Annotated[str, typer.Argument(help="A genre in the catalog's words, e.g. funk.")],
    kind: KindOption = "artist",
    home: HomeOption = None,
) -> None:
    """Give NAME a genre, e.g. `vault genres set Khruangbin funk`."""
    with open_records(home) as records:
        genres = records.teach_genre(kind, name, genre)
    console.print(f"{name} is {genre} now.", markup=False)
    console.print(_format.coverage_line(genres.coverage), markup=False)


@app.command("unset")
def unset_genre(
    name: Annotated[str, typer.Argument(help="The artist, channel or series.")],
    kind: KindOption = "artist",
    home: HomeOption = None,
) -> None:
    """Forget the genre you gave NAME (the built-in map applies again)."""
    with open_records(home) as records:
        genres = records.teach_genre(kind, name, None)
    console.print(f"Forgot the genre of {name}.", markup=False)
    console.print(_format.coverage_line(genres.coverage), markup=False)


@app.command("list")
def list_genres(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """The genres you taught, and how much of your listening and viewing has a genre."""
    with open_records(home) as records:
        genres = records.genres()
    if json_output:
        print_json(genres.model_dump())
        return
    listing = _format.Listing("genres you taught", ["for", "name", "genre"])
    for kind, names in sorted(genres.taught.items()):
        for name, genre in sorted(names.items()):
            listing.add_row(kind, name, genre)
    console.print(listing)
    console.print(_format.coverage_line(genres.coverage), markup=False)
