"""The export kinds and what each reads, apart from the parsers (and outside their package,
whose ``__init__`` loads them all): `vault import --help` lists them without loading any."""

from __future__ import annotations

#: Export kind → what it reads. Each importer's ``description`` is its entry here.
KINDS: dict[str, str] = {
    "spotify": "Spotify account data: StreamingHistory_music_*.json",
    "spotify-extended": "Spotify extended streaming history: Streaming_History_Audio_*.json",
    "youtube": "Google Takeout YouTube history: watch-history.html or .json",
    "netflix": "Netflix account data: ViewingActivity.csv",
    "profile": "a declared profile in TOML (birth date, city, languages, tastes...)",
    "jsonl": "generic events, one JSON object per line (see docs/importers.md)",
    "csv": "generic events as CSV: kind, occurred_at and attribute columns",
}
