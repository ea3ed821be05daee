"""Parser throughput of the importers alone, on synthetic exports written to a temp dir.

    .venv/bin/python scripts/bench_importers.py [--records 1000000]

Prints records/s for the Spotify extended importer (the widest JSON format), with ijson's
C backend and, as the baseline, its pure-Python backend on a slice of the file; plus
Netflix CSV and generic JSONL. The whole import must reach 25,000 events/s, so parsing
should run far above that.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import ijson

from vault.importers import importer_for


def extended_record(i: int) -> dict[str, object]:
    return {
        "ts": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z",
        "platform": "android", "ms_played": 1000 + i % 300_000, "conn_country": "GB",
        "ip_addr": "192.0.2.1",
        "master_metadata_track_name": f"Track {i % 5000}",
        "master_metadata_album_artist_name": f"Artist {i % 700}",
        "master_metadata_album_album_name": f"Album {i % 1500}",
        "spotify_track_uri": f"spotify:track:{i:022d}", "episode_name": None,
        "episode_show_name": None, "spotify_episode_uri": None, "audiobook_title": None,
        "audiobook_uri": None, "audiobook_chapter_uri": None, "audiobook_chapter_title": None,
        "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": False,
        "skipped": False, "offline": False, "offline_timestamp": None, "incognito_mode": False,
    }


def write_extended(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        for i in range(n):
            out.write(("," if i else "") + json.dumps(extended_record(i)) + "\n")
        out.write("]\n")


def write_netflix(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Profile Name,Start Time,Duration,Attributes,Title,Supplemental Video Type,"
                  "Device Type,Bookmark,Latest Bookmark,Country\r\n")
        for i in range(n):
            out.write(f"Ada,2024-01-{1 + i % 28:02d} 21:{i % 60:02d}:12,00:42:10,,"
                      f"Show {i % 90}: Season 1: Episode {i % 10},,TV,00:42:10,00:42:10,GB\r\n")


def write_jsonl(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps({"kind": "mood", "occurred_at": 1706735100 + i,
                                  "mood": "calm"}) + "\n")


def rate(kind: str, path: Path, limit: int | None = None) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    with path.open("rb") as stream:
        for _ in importer_for(kind).parse(stream, filename=path.name):
            count += 1
            if limit is not None and count >= limit:
                break
    return count, count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    n = parser.parse_args().records
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        extended = folder / "Streaming_History_Audio_bench.json"
        write_extended(extended, n)
        size_mb = extended.stat().st_size / 1e6
        count, fast = rate("spotify-extended", extended)
        print(f"spotify-extended, ijson {ijson.backend}: {count} records "
              f"({size_mb:.0f} MB) at {fast:,.0f} records/s")
        python_backend = SimpleNamespace(
            items=ijson.get_backend("python").items, JSONError=ijson.JSONError
        )
        with mock.patch("vault.importers._read.ijson", python_backend):
            slice_n, slow = rate("spotify-extended", extended, limit=max(1, n // 20))
        print(f"spotify-extended, ijson python (baseline, first {slice_n}): "
              f"{slow:,.0f} records/s -> C backend is {fast / slow:.1f}x")
        write_netflix(folder / "ViewingActivity.csv", n)
        count, csv_rate = rate("netflix", folder / "ViewingActivity.csv")
        print(f"netflix csv: {count} rows at {csv_rate:,.0f} records/s")
        write_jsonl(folder / "events.jsonl", n)
        count, jsonl_rate = rate("jsonl", folder / "events.jsonl")
        print(f"generic jsonl: {count} lines at {jsonl_rate:,.0f} records/s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB; target for the whole import: 25,000 events/s "
              f"(extended parse is {fast / 25_000:.0f}x that)")


if __name__ == "__main__":
    main()
