from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import crypto, errors, store
from vault.identity import Event, EventKind, Fact
from vault.keyfile import KEYFILE_NAME

PASS = "correct horse battery staple"
NOW = 1_763_800_000


def _clock() -> float:
    return float(NOW)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(home: Path) -> Iterator[store.Vault]:
    with store.Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM, clock=_clock) as v:
        yield v


def plays(n: int, *, start: int = 1_700_000_000) -> list[Event]:
    return [
        Event(EventKind.PLAY, start + i, "spotify",
              {"artist": f"Artist {i % 7}", "track": f"Track {i}", "ms_played": 180_000})
        for i in range(n)
    ]


def test_create_makes_private_files_and_an_owner_key(vault: store.Vault, home: Path) -> None:
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in (KEYFILE_NAME, store.DB_NAME, store.LOCK_NAME):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    vault.import_records(plays(3))
    for wal in home.glob("vault.db-*"):
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    assert vault.owner_address.startswith("0x") and len(vault.owner_address) == 42
    assert vault.owner_account().address == vault.owner_address


def test_reopen_with_passphrase_returns_everything(vault: store.Vault, home: Path) -> None:
    vault.import_records([*plays(10), Fact("city", "Lyon")])
    address = vault.owner_address
    vault.close()
    with store.Vault.open(home, PASS, clock=_clock) as again:
        assert again.owner_address == address
        assert again.facts() == {"city": "Lyon"}
        assert again.stats().events == 10


def test_reimport_is_idempotent(vault: store.Vault) -> None:
    first = vault.import_records(plays(50))
    assert (first.new_events, first.duplicate_events) == (50, 0)
    again = vault.import_records(plays(60) + plays(5))
    assert (again.new_events, again.duplicate_events) == (10, 55)
    stats = vault.stats()
    assert stats.events == 60
    assert stats.events_by_kind == {"play": 60}


def test_import_is_all_or_nothing(vault: store.Vault) -> None:
    """THREATS row 30: an error mid-file commits nothing from that file."""

    def broken() -> Iterator[Event | Fact]:
        yield from plays(store.BATCH + 5)
        yield Fact("city", "Nice")
        raise errors.MalformedExport("history.json", store.BATCH + 7, "bad date")

    with pytest.raises(errors.MalformedExport, match=r"history\.json, record"):
        vault.import_records(broken())
    assert vault.stats().events == 0
    assert vault.facts() == {}
    assert vault.import_records(plays(3)).new_events == 3


def test_facts_are_validated_and_sealed(vault: store.Vault, home: Path) -> None:
    vault.set_fact("favourite_colors", ["teal", "ochre"])
    assert vault.facts() == {"favourite_colors": ["teal", "ochre"]}
    with pytest.raises(errors.InputError):
        vault.set_fact("shoe_size", 44)
    vault.record_mood("calm", at=NOW - 60)
    with pytest.raises(errors.InputError):
        vault.record_mood("furious")
    raw = (home / store.DB_NAME).read_bytes() + _wal(home)
    assert b"ochre" not in raw and b"calm" not in raw and b"spotify" not in raw


def _wal(home: Path) -> bytes:
    wal = home / (store.DB_NAME + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_no_plaintext_reaches_the_database_file(vault: store.Vault, home: Path) -> None:
    vault.import_records([Event(EventKind.PURCHASE, NOW, "csv",
                                {"item": "canary-umbrella", "category": "fashion",
                                 "price": 20.0, "currency": "EUR"})])
    vault.close()
    raw = (home / store.DB_NAME).read_bytes() + _wal(home)
    assert b"canary-umbrella" not in raw and b"purchase" not in raw


def test_derived_values_are_materialised(vault: store.Vault) -> None:
    vault.set_fact("birth_date", "1990-06-01")
    vault.import_records(plays(40))
    values = vault.derived(["profile.age_range", "preferences.music"])
    assert values["profile.age_range"]["status"] == "ok"
    assert "status" in values["preferences.music"]
    with pytest.raises(errors.UnknownScope):
        vault.derived(["no.such.scope"])
    basis = vault.derivation_basis("preferences.music")
    assert basis["events"].get("play") == 40


def test_secret_is_made_with_the_vault_and_kept(vault: store.Vault, home: Path) -> None:
    noise = vault.secret("noise")
    assert len(noise) == 32 and vault.secret("noise") == noise
    with pytest.raises(ValueError, match="unknown secret"):
        vault.secret("other")
    vault.close()
    with store.Vault.open(home, PASS) as again:
        assert again.secret("noise") == noise


def test_wrong_passphrase_writes_nothing(vault: store.Vault, home: Path) -> None:
    """THREATS row 1: wrong passphrase → WrongPassphrase, nothing written."""
    vault.import_records(plays(5))
    vault.close()
    before = {p.name: p.read_bytes() for p in home.iterdir()}
    with pytest.raises(errors.WrongPassphrase):
        store.Vault.open(home, "not it")
    assert {p.name: p.read_bytes() for p in home.iterdir()} == before


def test_second_writer_is_refused(vault: store.Vault, home: Path) -> None:
    with pytest.raises(errors.VaultBusy):
        store.Vault.open(home, PASS)


def test_create_refuses_existing_vault_and_open_missing_one(
    vault: store.Vault, home: Path, tmp_path: Path
) -> None:
    vault.close()
    with pytest.raises(errors.VaultExists):
        store.Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM)
    with pytest.raises(errors.VaultNotFound):
        store.Vault.open(tmp_path / "nowhere", PASS)


def test_unlock_cost_is_one_kdf_whatever_the_size(
    vault: store.Vault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlock runs one KDF and reads no event."""
    vault.import_records(plays(3000))
    vault.close()
    calls: list[int] = []
    real = crypto.derive_kek

    def counting(*args: object, **kwargs: object) -> crypto.SecretKey:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(crypto, "derive_kek", counting)
    statements: list[str] = []
    opened = store.Vault.open(home, PASS)
    import sqlalchemy

    sqlalchemy.event.listen(opened._engine, "before_cursor_execute",
                            lambda *a: statements.append(a[2]))
    assert len(calls) == 1
    opened.close()
    assert not any("events" in s for s in statements)


@pytest.mark.parametrize("target", ["payload", "row"])
def test_value_moved_to_another_row_fails_and_check_names_it(
    vault: store.Vault, home: Path, target: str
) -> None:
    """THREATS rows 3 and 5: a sealed value copied onto another row does not open; check
    names the damaged record and the others stay readable."""
    vault.import_records(plays(5))
    vault.close()
    db = sqlite3.connect(home / store.DB_NAME)
    (payload,) = db.execute("SELECT payload FROM events WHERE id = 1").fetchone()
    db.execute("UPDATE events SET payload = ? WHERE id = 2", (payload,))
    db.commit()
    db.close()
    with store.Vault.open(home, PASS) as again:
        damaged = again.check()
        assert [(d.table, d.row, d.column) for d in damaged] == [("events", "2", "payload")]
        assert again.stats().events == 5


def test_value_moved_to_another_table_fails(vault: store.Vault, home: Path) -> None:
    """THREATS row 5: a fact value copied into the secrets table does not open."""
    vault.set_fact("city", "Lyon")
    vault.close()
    db = sqlite3.connect(home / store.DB_NAME)
    (value,) = db.execute("SELECT value FROM facts WHERE name = 'city'").fetchone()
    db.execute("INSERT INTO secrets (name, key_version, value) VALUES ('city', 1, ?)", (value,))
    db.execute("UPDATE facts SET value = (SELECT value FROM secrets WHERE name = 'owner_key')")
    db.commit()
    db.close()
    with store.Vault.open(home, PASS) as again:
        names = {(d.table, d.row) for d in again.check()}
        assert names == {("facts", "city"), ("secrets", "city")}
        with pytest.raises(errors.CorruptFile, match="the fact 'city' is damaged"):
            again.facts()


def test_bit_flip_in_a_sealed_value_is_named_by_check(vault: store.Vault, home: Path) -> None:
    """THREATS row 3: a flipped bit in one sealed value → that record named, rest readable."""
    vault.import_records(plays(20))
    with vault._read() as conn:
        (token,) = conn.exec_driver_sql("SELECT payload FROM events WHERE id = 7").one()
    vault.close()
    path = home / store.DB_NAME
    raw = bytearray(path.read_bytes())
    at = raw.find(token)
    assert at > 0
    raw[at + len(token) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with store.Vault.open(home, PASS) as again:
        assert [(d.table, d.row) for d in again.check()] == [("events", "7")]
        assert again.stats().events == 20


def test_truncated_database_is_refused(vault: store.Vault, home: Path) -> None:
    """THREATS row 2: a truncated database → CorruptFile (never a partial record)."""
    vault.import_records(plays(3000))
    vault.close()
    path = home / store.DB_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    try:
        with store.Vault.open(home, PASS) as again:
            assert any(d.table == "database" for d in again.check())
    except errors.CorruptFile:
        pass
    path.write_bytes(b"not a database at all" * 10)
    with pytest.raises(errors.CorruptFile):
        store.Vault.open(home, PASS)


def test_change_passphrase_rewraps_only(vault: store.Vault, home: Path) -> None:
    vault.import_records(plays(10))
    before = _tokens(home)
    vault.change_passphrase("a new passphrase")
    vault.close()
    assert _tokens(home) == before
    with pytest.raises(errors.WrongPassphrase):
        store.Vault.open(home, PASS)
    with store.Vault.open(home, "a new passphrase") as again:
        assert again.stats().events == 10


def _tokens(home: Path) -> list[bytes]:
    db = sqlite3.connect(home / store.DB_NAME)
    try:
        return [r[0] for t, c in (("events", "payload"), ("facts", "value"),
                                  ("secrets", "value"), ("derived", "value"))
                for r in db.execute(f"SELECT {c} FROM {t} ORDER BY 1")]
    finally:
        db.close()


def test_rotate_key_reseals_every_row(vault: store.Vault, home: Path) -> None:
    vault.import_records([*plays(2500), Fact("city", "Lyon")])
    noise = vault.secret("noise")
    address = vault.owner_address
    summary = vault.rotate_key(batch_size=700)
    assert summary.key_version == 2 and not summary.resumed
    assert vault.stats().key_versions == [2]
    vault.close()
    db = sqlite3.connect(home / store.DB_NAME)
    versions = {r[0] for t in ("events", "facts", "secrets", "derived")
                for r in db.execute(f"SELECT DISTINCT key_version FROM {t}")}
    db.close()
    assert versions == {2}
    assert list(json.loads((home / KEYFILE_NAME).read_text())["keys"]) == ["2"]
    with store.Vault.open(home, PASS) as again:
        assert again.check() == []
        assert again.owner_address == address and again.secret("noise") == noise
        assert again.facts() == {"city": "Lyon"}
        assert again.import_records(plays(2500)).duplicate_events == 2500


def test_import_waits_for_an_unfinished_rotation(vault: store.Vault, home: Path) -> None:
    vault.import_records(plays(10))
    vault._keyfile, vault._keyring = vault._keyfile.with_new_key(vault._kek, vault._keyring)
    vault._keyfile.write(home)
    with pytest.raises(errors.VaultStateError, match="rotation"):
        vault.import_records(plays(1))
    assert vault.rotate_key().resumed
    assert vault.import_records(plays(11)).new_events == 1


def test_newer_schema_is_refused(vault: store.Vault, home: Path) -> None:
    vault.close()
    db = sqlite3.connect(home / store.DB_NAME)
    db.execute("UPDATE schema_version SET version = ?", (store.SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(errors.VaultStateError, match="schema version"):
        store.Vault.open(home, PASS)


def test_stats_and_repr_carry_no_secret(vault: store.Vault) -> None:
    """THREATS row 9: reprs and stats hold counts and public values only."""
    vault.set_fact("city", "Secretville")
    vault.import_records(plays(3))
    text = repr(vault) + json.dumps(vault.stats().to_json()) + repr(vault._keyring)
    assert "Secretville" not in text and "Artist" not in text
    key = vault._keyring.current.key.reveal()
    assert key.hex() not in text and repr(key) not in text


def _views(n: int) -> list[Event]:
    return [Event(EventKind.VIEW, 1_700_000_000 + i, "youtube",
                  {"platform": "youtube", "channel": "Veritasium", "title": f"Video {i}"})
            for i in range(n)]


def test_forget_source_deletes_its_events_and_rederives(vault: store.Vault) -> None:
    vault.import_records([*plays(12), *_views(5), Fact("city", "Lisbon")])
    before = vault.stats()

    planned = vault.forget_source("spotify", dry_run=True)
    assert (planned.events, planned.events_by_source) == (12, {"spotify": 12})
    assert vault.stats().events == before.events  # a plan deletes nothing

    done = vault.forget_source("spotify")
    assert done == planned
    after = vault.stats()
    assert after.events == 5
    assert after.events_by_kind == {"view": 5} and after.events_by_source == {"youtube": 5}
    assert vault.genre_coverage()["listens"] == 0
    assert vault.derived(["preferences.music"])["preferences.music"]["status"] == (
        "insufficient_data")
    assert vault.facts() == {"city": "Lisbon"}
    assert vault.check() == []  # the manifest's event digest counts what stays


def test_forget_leaves_no_trace_a_reimport_or_a_new_event_trips_over(
    vault: store.Vault, home: Path
) -> None:
    vault.import_records(plays(6))
    vault.forget_source("spotify")
    again = vault.import_records(plays(6))  # the same records import again, as new
    assert (again.new_events, again.duplicate_events) == (6, 0)
    assert vault.check() == []
    with sqlite3.connect(home / store.DB_NAME) as db:  # forgotten ids are not handed out again
        assert [r[0] for r in db.execute("SELECT id FROM events ORDER BY id")] == list(
            range(7, 13))


def test_an_event_put_back_after_a_forget_is_named_by_check(
    vault: store.Vault, home: Path
) -> None:
    vault.import_records(plays(3))
    with sqlite3.connect(home / store.DB_NAME) as db:
        kept = db.execute("SELECT id, key_version, dedupe, payload FROM events").fetchone()
    vault.forget_source("spotify")
    with sqlite3.connect(home / store.DB_NAME) as db:
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", kept)
    assert [(d.table, d.row) for d in vault.check()] == [("events", "*")]
    assert "digest of event ids does not match" in vault.check()[0].problem


def test_forget_records_deletes_what_a_file_stored_and_keeps_changed_facts(
    vault: store.Vault,
) -> None:
    file = [*plays(4), Fact("city", "Lisbon"), Fact("country", "PT")]
    vault.import_records([*file, *_views(2)])
    vault.set_fact("city", "Porto")  # the owner's own word since: it stays

    done = vault.forget_records(file, what="profile.toml")
    assert (done.events, done.events_by_source, done.facts) == (4, {"spotify": 4}, ("country",))
    assert vault.facts() == {"city": "Porto"}
    assert vault.stats().events_by_source == {"youtube": 2}
    assert vault.check() == []
    with pytest.raises(errors.NotFound, match=r"nothing in profile\.toml is stored"):
        vault.forget_records(file, what="profile.toml")


def test_forget_fact(vault: store.Vault) -> None:
    vault.import_records([Fact("city", "Lisbon"), Fact("birth_date", "1990-04-01")])
    assert vault.forget_fact("city", dry_run=True).facts == ("city",)
    assert vault.forget_fact("city").facts == ("city",)
    assert vault.facts() == {"birth_date": "1990-04-01"}
    assert vault.check() == []
    with pytest.raises(errors.NotFound, match="the fact 'city' is not set"):
        vault.forget_fact("city")
    with pytest.raises(errors.InputError, match="unknown fact 'shoe_size'"):
        vault.forget_fact("shoe_size")


def test_forgetting_what_is_not_stored_writes_nothing(vault: store.Vault, home: Path) -> None:
    vault.import_records(plays(2))

    def manifest() -> bytes:
        with sqlite3.connect(home / store.DB_NAME) as db:
            row: tuple[bytes] = db.execute("SELECT manifest FROM integrity").fetchone()
            return row[0]

    written = manifest()
    with pytest.raises(errors.NotFound, match="no events from the source 'netflix'"):
        vault.forget_source("netflix")
    assert manifest() == written


def test_forget_is_all_or_nothing(vault: store.Vault, home: Path) -> None:
    vault.import_records([*plays(5), Fact("city", "Lisbon")])
    with sqlite3.connect(home / store.DB_NAME) as db:  # re-deriving reads the facts: it fails
        db.execute("UPDATE facts SET value = x'00' WHERE name = 'city'")
    with pytest.raises(errors.CorruptFile, match="the fact 'city' is damaged"):
        vault.forget_source("spotify")
    with sqlite3.connect(home / store.DB_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (5,)
    assert [(d.table, d.row) for d in vault.check()] == [("facts", "city")]
