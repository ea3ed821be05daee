"""Exports as people have them (issue 14): `import_export` on real files and real ZIPs in
the services' layouts (built here, no personal data) into a real vault — the kind detected
from the content, Takeout's HTML watch history, skipped records counted by reason, Netflix
profiles chosen, hostile archives refused (THREATS rows 25, 30) with nothing committed —
and the same refusals through the real CLI, one line and a distinct exit code each.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import crypto, errors
from vault.importers.exports import import_export
from vault.store import Vault

PASS = "pw"
SAMPLES = Path(__file__).resolve().parents[2] / "vault" / "samples"
VAULT = str(Path(sys.executable).with_name("vault"))


def _entry(title: str, channel: str | None, when: str, *, ad: bool = False) -> str:
    channel_line = (f'<a href="https://www.youtube.com/channel/x">{channel}</a><br>'
                    if channel else "")
    details = "<b>Details:</b><br>&emsp;From Google Ads<br>" if ad else ""
    return (
        '<div class="outer-cell mdl-cell mdl-cell--12-col mdl-shadow--2dp"><div class="mdl-grid">'
        '<div class="header-cell mdl-cell mdl-cell--12-col"><p class="mdl-typography--title">'
        'YouTube<br></p></div><div class="content-cell mdl-cell mdl-cell--6-col '
        f'mdl-typography--body-1">{title}<br>{channel_line}{when}<br></div>'
        '<div class="content-cell mdl-cell mdl-cell--6-col mdl-typography--body-1 '
        'mdl-typography--text-right"></div><div class="content-cell mdl-cell mdl-cell--12-col '
        f'mdl-typography--caption"><b>Products:</b><br>&emsp;YouTube<br>{details}</div>'
        "</div></div>"
    )


WATCH_HISTORY_HTML = (
    "<!DOCTYPE html><html><head><meta charset=\"UTF-8\"><title>History</title></head><body>"
    '<div class="mdl-grid">'
    + _entry('Watched&nbsp;<a href="https://www.youtube.com/watch?v=a">Sourdough, the long '
             "way</a>", "Bake Club", "Jan 31, 2024, 9:05:12\u202fPM CET")
    + _entry('Watched&nbsp;<a href="https://www.youtube.com/watch?v=b">Night drive</a>',
             "Lo-fi Radio", "1 Feb 2024, 07:00:00 GMT")
    + _entry('Watched&nbsp;<a href="https://www.youtube.com/watch?v=c">Buy now</a>',
             None, "Feb 2, 2024, 8:00:00 AM PST", ad=True)
    + _entry("Watched a video that has been removed", None, "Feb 3, 2024, 8:00:00 AM UTC")
    + "</div></body></html>"
)


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    with Vault.create(tmp_path / "home", PASS, kdf=crypto.KDF_MINIMUM) as opened:
        yield opened


def takeout_zip(folder: Path) -> Path:
    path = folder / "takeout-20240301T000000Z-001.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Takeout/YouTube and YouTube Music/history/watch-history.html",
                         WATCH_HISTORY_HTML)
        archive.writestr("Takeout/YouTube and YouTube Music/history/search-history.html",
                         "<!DOCTYPE html><html><body>Searched for bread</body></html>")
        archive.writestr("Takeout/archive_browser.html", "<!DOCTYPE html><html></html>")
    return path


def netflix_zip(folder: Path) -> Path:
    path = folder / "netflix-report.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLES / "ViewingActivity.csv", "CONTENT_INTERACTION/ViewingActivity.csv")
        archive.writestr("PROFILES/Profiles.csv", "Profile Name,Email Address\nAda,\n")
    return path


def test_a_takeout_zip_imports_its_html_watch_history_and_counts_what_it_skipped(
    vault: Vault, tmp_path: Path
) -> None:
    report = import_export(vault, takeout_zip(tmp_path))
    assert [(f.name.split(":")[1], f.kind) for f in report.files] == [
        ("Takeout/YouTube and YouTube Music/history/watch-history.html", "youtube")]
    assert len(report.ignored) == 2
    assert report.new_events == 2
    assert report.skipped == {"ad": 1, "removed video": 1}
    assert vault.stats().events_by_source == {"youtube": 2}
    # The JSON format of the same history gives the same events: nothing new.
    as_json = tmp_path / "watch-history.json"
    as_json.write_text(json.dumps([
        {"header": "YouTube", "title": "Watched Sourdough, the long way",
         "subtitles": [{"name": "Bake Club"}], "time": "2024-01-31T20:05:12Z"},
        {"header": "YouTube", "title": "Watched Night drive",
         "subtitles": [{"name": "Lo-fi Radio"}], "time": "2024-02-01T07:00:00.000Z"},
    ]))
    again = import_export(vault, as_json)
    assert (again.new_events, again.duplicate_events) == (0, 2)


def test_the_extended_history_named_as_spotify_names_its_kind(vault: Vault) -> None:
    with pytest.raises(errors.ExportKindMismatch, match="is a spotify-extended export"):
        import_export(vault, SAMPLES / "Streaming_History_Audio_2024.json", kind="spotify")
    assert vault.stats().events == 0


def test_podcasts_and_private_sessions_are_counted_not_dropped_silently(vault: Vault) -> None:
    report = import_export(vault, SAMPLES / "Streaming_History_Audio_2024.json")
    assert report.skipped == {"podcast episode or audiobook": 15, "private session": 3}
    assert report.new_events == 162


def test_a_netflix_report_of_two_profiles_needs_a_choice(
    vault: Vault, tmp_path: Path
) -> None:
    report_zip = netflix_zip(tmp_path)
    with pytest.raises(errors.ProfileChoiceNeeded):
        import_export(vault, report_zip)
    assert vault.stats().events == 0
    with pytest.raises(errors.InputError, match="no Netflix profile by that name"):
        import_export(vault, report_zip, profile="Nobody")
    mine = import_export(vault, report_zip, profile="Ada")
    assert mine.skipped["another profile"] > 0
    assert {f.kind for f in mine.files} == {"netflix"}


def _hostile(folder: Path, name: str, write: object) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLES / "StreamingHistory_music_0.json",
                      "Spotify Account Data/StreamingHistory_music_0.json")
        assert callable(write)
        write(archive)
    return path


def _traversal(archive: zipfile.ZipFile) -> None:
    archive.writestr("../../etc/StreamingHistory_music_1.json", "[]")


def _symlink(archive: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("Spotify Account Data/StreamingHistory_music_1.json")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive.writestr(info, "/home/someone/.ssh/id_ed25519")


def _bomb(archive: zipfile.ZipFile) -> None:
    archive.writestr("Spotify Account Data/StreamingHistory_music_1.json",
                     b"[" + b" " * (8 << 20) + b"]")


@pytest.mark.parametrize(("write", "problem"), [
    (_traversal, "a path outside the archive"),
    (_symlink, "is a symbolic link"),
    (_bomb, "a zip bomb"),
])
def test_a_hostile_archive_is_refused_whole(
    vault: Vault, tmp_path: Path, write: object, problem: str
) -> None:
    with pytest.raises(errors.UnsafeArchive, match=problem):
        import_export(vault, _hostile(tmp_path, "my_spotify_data.zip", write))
    assert vault.stats().events == 0


def test_a_device_or_a_folder_is_not_read(vault: Vault, tmp_path: Path) -> None:
    for path in (Path("/dev/zero"), tmp_path):
        with pytest.raises(errors.InputError, match="not a regular file"):
            import_export(vault, path)


# --- through the CLI -------------------------------------------------------------------


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VAULT_HOME": str(home), "VAULT_PASSPHRASE": PASS, "COLUMNS": "80"}
    return subprocess.run([VAULT, *args], capture_output=True, text=True, timeout=120,
                          env=env, stdin=subprocess.DEVNULL)


def test_the_cli_refuses_bad_exports_with_one_line_and_distinct_exit_codes(
    tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM):
        pass
    not_an_export = tmp_path / "notes.txt"
    not_an_export.write_text("shopping: bread, milk\n")
    cases = [
        (["import", str(_hostile(tmp_path, "a.zip", _traversal))], 16),
        (["import", "spotify", str(SAMPLES / "Streaming_History_Audio_2024.json")], 17),
        (["import", str(not_an_export)], 17),
        (["import", str(netflix_zip(tmp_path))], 18),
    ]
    for argv, code in cases:
        done = _cli(home, *argv)
        assert done.returncode == code, (argv, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    stats = json.loads(_cli(home, "stats", "--json").stdout)
    assert stats["events"] == 0


def test_import_help_lists_the_kinds(tmp_path: Path) -> None:
    shown = _cli(tmp_path, "import", "--help").stdout
    for kind in ("spotify", "spotify-extended", "youtube", "netflix", "profile", "jsonl"):
        assert f"  {kind} " in shown


def test_genres_taught_by_the_owner_feed_the_music_preferences(
    vault: Vault, tmp_path: Path
) -> None:
    plays = [{"endTime": f"2024-03-0{day} 10:00", "artistName": "Khruangbin",
              "trackName": f"Track {day}", "msPlayed": 200_000} for day in range(1, 6)]
    history = tmp_path / "StreamingHistory_music_0.json"
    history.write_text(json.dumps(plays))
    report = import_export(vault, history)
    assert report.coverage.listens == 5 and report.coverage.listens_with_genre == 0
    vault.teach_genre("artist", "Khruangbin", "funk")
    assert vault.genre_coverage()["listens_with_genre"] == 5
    music = vault.derived(["preferences.music"])["preferences.music"]
    assert [entry["genre"] for entry in music["genres"]] == ["funk"]
    with pytest.raises(errors.InputError, match="not a music genre"):
        vault.teach_genre("artist", "Khruangbin", "sourdough")
    vault.teach_genre("artist", "Khruangbin", None)
    assert vault.genre_coverage()["listens_with_genre"] == 0
