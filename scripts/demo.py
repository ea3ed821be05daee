"""`make demo`: the whole story, as real separate processes on a local chain.

A person creates a vault and imports the exports they already have; the vault's daemon goes
on duty; the person publishes terms on the consent ledger. Company A pays for two scopes,
the person reads the consent statement and approves in the CLI; A relays the signed
approval, fetches and verifies the owner's receipt. Company B is approved by a rule while
the person is away. Ten (fast-forwarded) days later the person revokes A, A is refused at
once and takes back its refund, the person withdraws what they earned, and the
hash-chained access log verifies.

Every `vault …` line below is the real CLI in its own process; every `[company A]` line is
`scripts/company.py` using only the company SDK. Everything runs in a temporary folder and
on an anvil bound to 127.0.0.1; both are gone when the demo ends, even on failure or
Ctrl-C. Exit status: 0 when every step did what it should, 1 otherwise.

Where the seconds go: almost all of them are process start-ups (each `vault` command and
each company step is a new Python process that imports web3 and, for the owner, the store)
and one Argon2id unlock per owner process that opens the vault itself. So the chain starts
during the imports, and each company's next process is started ahead, while the owner's
steps run, and is handed its command when the story reaches it. The chapters show the
running time; the last line the total.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text

from vault.cli.backend import DaemonBackend
from vault.daemon import runtime
from vault.errors import VaultError
from vault.eth import chain as chains
from vault.eth.units import format_eth
from vault.importers import sample_exports

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "demo passphrase, not a secret"  # a throwaway demo vault
DAY = 86_400
MUSIC_AGE = "preferences.music,profile.age_range"
MUSIC_TOPICS = "preferences.music,interests.topics"

console = Console(highlight=False)


class StepFailed(Exception):
    """A step did not do what the story needs."""


def _vault_command() -> list[str]:
    script = Path(sys.executable).with_name("vault")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from vault.cli import main; main()"]


def _stop_demo(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.home = workdir / "owner"
        self.vault = _vault_command()
        self.env = {
            **os.environ,
            "VAULT_HOME": str(self.home),
            "VAULT_PASSPHRASE": PASSPHRASE,
            "VAULT_CHAIN": "devnet",
            "VAULT_PORT": str(chains.free_port()),
            "VAULT_SYNC_INTERVAL_SECONDS": "0.25",
            "NO_COLOR": "1",
            "COLUMNS": str(max(60, console.width - 2)),  # their output is indented by 2
        }
        for name in ("VAULT_RPC_URL", "VAULT_CHAIN_ID", "VAULT_LEDGER"):
            self.env.pop(name, None)
        self.serve: subprocess.Popen[bytes] | None = None
        #: Each company's next process, started ahead and waiting for its command.
        self.ready: dict[str, subprocess.Popen[str]] = {}
        self.serve_log = workdir / "daemon.log"
        self.devnet_started = False
        self.rpc_url = ""
        self.ledger = ""
        self.owner = ""
        self.accounts = chains.anvil_dev_accounts()
        self.started = time.monotonic()
        #: Seconds per kind of step, printed at the end: where the time went.
        self.spent: dict[str, list[float]] = {
            "vault commands": [], "company steps": [], "waits for the chain": [],
            "waits for the daemon": []}

    # ----------------------------------------------------------------- helpers

    def chapter(self, number: int, title: str, why: str = "") -> None:
        console.print()
        console.rule(f"[bold]{number}. {title}  [dim]({time.monotonic() - self.started:.1f} s)")
        if why:
            console.print(Text(why, style="italic"))

    def _show(self, prompt: str, output: str, *, tail: int | None = None) -> None:
        console.print(Text(f"$ {prompt}", style="bold cyan"))
        lines = output.rstrip("\n").splitlines()
        if tail is not None and len(lines) > tail:
            console.print(Text(f"  (… {len(lines) - tail} lines: the same request and "
                               "statement as above …)", style="dim"))
            lines = lines[-tail:]
        console.print(Padding(Text("\n".join(lines)), (0, 0, 0, 2)))

    def run(self, *args: str, expect: int = 0, show: bool = True,
            tail: int | None = None) -> str:
        """Run ``vault ARGS`` in its own process; its output, or StepFailed."""
        began = time.monotonic()
        done = subprocess.run([*self.vault, *args], env=self.env, capture_output=True,
                              text=True, timeout=90, check=False)
        self.spent["vault commands"].append(time.monotonic() - began)
        output = done.stdout + done.stderr
        if show:
            self._show("vault " + " ".join(args), output, tail=tail)
        if done.returncode != expect:
            if not show:
                self._show("vault " + " ".join(args), output)
            raise StepFailed(f"`vault {' '.join(args)}` exited {done.returncode}, "
                             f"expected {expect}")
        return done.stdout

    def start_company(self, name: str, account: int) -> None:
        """Start company ``name``'s next ``scripts/company.py`` process (a funded anvil
        account): it does its imports now and waits for :meth:`company` to hand it its
        command."""
        command = [sys.executable, str(ROOT / "scripts" / "company.py"), "--await-command",
                   "--rpc", self.rpc_url, "--ledger", self.ledger, "--name", f"company {name}"]
        env = {**self.env, "COMPANY_KEY": "0x" + bytes(self.accounts[account].key).hex()}
        self.ready[name] = subprocess.Popen(command, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True)

    def company(self, name: str, account: int, *args: str, expect: int = 0,
                again: bool = False) -> str:
        """Run ``scripts/company.py ARGS`` as company ``name``, in the process started for
        it ahead (or a new one); with ``again``, start its next process right after."""
        if name not in self.ready:
            self.start_company(name, account)
        process = self.ready.pop(name)
        began = time.monotonic()
        try:
            output, _ = process.communicate(shlex.join(args) + "\n", timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        self.spent["company steps"].append(time.monotonic() - began)
        if again:
            self.start_company(name, account)
        self._show(f"python scripts/company.py {args[0]}  (company {name}, SDK only)", output)
        if process.returncode != expect:
            raise StepFailed(f"company {name} `{args[0]}` exited {process.returncode}, "
                             f"expected {expect}")
        return output

    def rpc(self, method: str, *params: Any) -> Any:
        return chains.rpc_call(self.rpc_url, method, list(params), timeout=10.0)

    def balance(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", address, "latest"), 16)

    def wait_for(self, what: str, condition: Any, timeout: float = 20.0) -> None:
        began = time.monotonic()
        deadline = began + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out waiting for {what}")
            time.sleep(0.1)
        self.spent["waits for the daemon"].append(time.monotonic() - began)

    def where_the_time_went(self, elapsed: float) -> str:
        parts = [f"{len(times)} {kind} {sum(times):.1f} s" for kind, times in self.spent.items()]
        rest = elapsed - sum(sum(times) for times in self.spent.values())
        return "where the time went: " + ", ".join(parts) + f", the rest {rest:.1f} s"

    # ----------------------------------------------------------------- the story

    def story(self) -> None:
        self.chapter(1, "A person creates a vault",
                     "Encrypted on their own machine: Argon2id → key-encryption key → data key "
                     "→ AES-256-GCM for every value. Their Ethereum key is sealed inside.")
        created = self.run("init")
        self.owner = next(line.split()[-1] for line in created.splitlines()
                          if line.startswith("Owner address:"))

        # The chain starts in the background while the imports run (they do not touch it).
        devnet_args = ("devnet", "up", "--port", str(chains.free_port()))
        self.devnet_started = True
        devnet = subprocess.Popen([*self.vault, *devnet_args], env=self.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        self.chapter(2, "…and imports the exports they already have",
                     "Spotify, YouTube, Netflix, a profile, purchases, moods. Raw records "
                     "never leave the vault; companies only ever see derived preferences.")
        for kind, path in sample_exports():
            # Ada's Netflix export also holds her partner's profile: hers only.
            self.run("import", kind, str(path), *(["--profile", "Ada"] if kind == "netflix"
                                                  else []))

        self.chapter(3, "A local chain with the consent ledger",
                     "anvil on 127.0.0.1, the ConsentLedger contract deployed on it "
                     "(started in the background during the imports).")
        began = time.monotonic()
        output, _ = devnet.communicate(timeout=90)
        self.spent["waits for the chain"].append(time.monotonic() - began)
        self._show("vault " + " ".join(devnet_args), output)
        if devnet.returncode != 0:
            raise StepFailed(f"`vault devnet up` exited {devnet.returncode}")
        status = chains.Devnet(self.home).status()  # what `vault devnet status` reads
        if status.rpc_url is None or status.ledger is None:
            raise StepFailed("`vault devnet up` recorded no RPC URL or ledger")
        self.rpc_url, self.ledger = status.rpc_url, status.ledger
        self.start_company("A", 1)
        self.start_company("B", 2)

        self.chapter(4, "The vault's daemon goes on duty",
                     "It answers companies that hold a valid, paid grant — and nobody else.")
        self.serve = subprocess.Popen(
            [*self.vault, "serve"], env=self.env, stdout=subprocess.DEVNULL,
            stderr=self.serve_log.open("wb"), start_new_session=True,
        )
        endpoint = f"http://127.0.0.1:{self.env['VAULT_PORT']}"
        self.wait_for("the daemon", lambda: self._healthy(endpoint), timeout=30)
        self._show("vault serve &", f"daemon for {self.owner} at {endpoint} (pid {self.serve.pid})")

        self.chapter(5, "The owner sets terms and publishes them on the ledger",
                     "A little ETH for gas first (revoke, claim, withdraw); approving needs "
                     "none — the company relays the owner's signature.")
        self.rpc("eth_sendTransaction", {"from": str(self.accounts[9].address), "to": self.owner,
                                          "value": hex(5 * 10**16)})
        console.print(f"  (funded {self.owner} with 0.05 ETH from an anvil dev account)")
        self.run("terms", "set", "--min-price-per-day", "0.00005", "--max-duration", "90d",
                 "--offer", "preferences.music", "--offer", "profile.age_range",
                 "--offer", "interests.topics", "--never", "mood.current",
                 "--note", "Music and topics for personalisation; never my mood.")
        self.run("terms", "publish")

        self.chapter(6, "Company A asks for two scopes and pays into escrow")
        state_a, state_b = str(self.dir / "a.json"), str(self.dir / "b.json")
        self.company("A", 1, "request", "--owner", self.owner, "--scopes", MUSIC_AGE,
                     "--price", "0.003", "--days", "30",
                     "--purpose", "Playlist suggestions in our app", "--state", state_a,
                     again=True)
        request_a = json.loads(Path(state_a).read_text())["id"]

        self.chapter(7, "The owner reviews the request and its consent statement",
                     "The statement is generated only from the fields the owner signs and "
                     "the ledger holds.")
        self.wait_for("the daemon to index the request", self._pending_requests)
        self.run("requests")
        self.run("approve", str(request_a), "--yes", tail=2)

        self.chapter(8, "A relays the signed approval, fetches and verifies the receipt")
        fetched = self.company("A", 1, "fetch", "--state", state_a, again=True)
        if "receipt verified" not in fetched:
            raise StepFailed("company A did not verify a receipt")

        self.chapter(9, "Company B is approved by a rule while the owner is away")
        rules = self.dir / "rules.json"
        rules.write_text(json.dumps({
            "rules": [{"name": "music and topics for anyone", "scopes":
                       ["preferences.music", "interests.topics"],
                       "min_price_per_day_wei": 4 * 10**13,
                       "max_duration_seconds": 90 * DAY}],
            "never_share": ["mood.current"],
        }, indent=2))
        self.run("rules", "set", str(rules))
        self.company("B", 2, "request", "--owner", self.owner, "--scopes", MUSIC_TOPICS,
                     "--price", "0.0015", "--days", "30",
                     "--purpose", "Recommend podcasts", "--state", state_b, again=True)
        self.company("B", 2, "fetch", "--state", state_b)
        self.run("grants")

        self.chapter(10, "Ten days pass (the devnet fast-forwards its clock)",
                     "Payment streams: each grant earns its price pro rata of the time held.")
        self.rpc("evm_increaseTime", 10 * DAY)
        self.rpc("evm_mine")
        self.run("earnings")

        self.chapter(11, "The owner revokes A",
                     "Releases stop at once (recorded locally before the transaction "
                     "confirms); the owner keeps what A paid for the ten days.")
        self.run("revoke", str(request_a), "--yes")

        self.chapter(12, "A is refused, and takes back the unearned part")
        refused = self.company("A", 1, "fetch", "--state", state_a, expect=3, again=True)
        if "403 revoked" not in refused:
            raise StepFailed("company A was not refused with 403 revoked")
        self.company("A", 1, "withdraw")

        self.chapter(13, "The owner is paid")
        before = self.balance(self.owner)
        self.run("earnings")
        self.run("withdraw", "--yes")
        gained = self.balance(self.owner) - before
        console.print(f"  the owner's wallet grew by {format_eth(gained)} (after gas)")
        if gained <= 0:
            raise StepFailed("the owner's balance did not grow")

        self.chapter(14, "Every release, refusal and decision is in the access log")
        self.run("log", "--limit", "12")
        self.run("log", "verify")

    def _pending_requests(self) -> list[Any]:
        """The daemon's pending requests, asked as the CLI asks: found through its runtime
        file and proven by the identity challenge first (for waiting, not for show)."""
        published = runtime.read(self.home)
        if published is None:
            raise StepFailed("`vault serve` has not published its runtime file")
        daemon = DaemonBackend.connect(published, timeout=5)
        try:
            return list(daemon.requests())
        finally:
            daemon.close()

    def _healthy(self, endpoint: str) -> bool:
        if self.serve is not None and self.serve.poll() is not None:
            raise StepFailed(f"`vault serve` exited {self.serve.returncode}")
        try:
            return httpx.get(endpoint + "/v1/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    # ----------------------------------------------------------------- cleanup

    def cleanup(self) -> None:
        """Stop the company processes, the daemon and the devnet this demo started. Called
        even on failure."""
        for waiting in self.ready.values():
            try:
                waiting.communicate("", timeout=15)  # end of input: it exits
            except subprocess.TimeoutExpired:
                waiting.kill()
                waiting.wait()
        self.ready.clear()
        if self.serve is not None and self.serve.poll() is None:
            self.serve.terminate()
            try:
                self.serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
        if self.devnet_started or (self.home / "devnet").exists():
            try:
                chains.Devnet(self.home).down()  # what `vault devnet down` does
            except VaultError as error:
                console.print(Text(f"the devnet did not stop: {error} — {error.hint}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (the vault, logs) for inspection")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop_demo)
    signal.signal(signal.SIGHUP, _stop_demo)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vault-demo-"))
    demo = Demo(workdir)
    story = " ".join(__doc__.split("\n\n")[1].split())
    console.print(Panel(story, title="vault — the whole story", expand=False))
    failed: str | None = None
    try:
        demo.story()
    except StepFailed as error:
        failed = str(error)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        if failed and demo.serve_log.exists() and demo.serve_log.stat().st_size:
            console.print(Text("daemon log:\n" + demo.serve_log.read_text(errors="replace")))
        demo.cleanup()
        if args.keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    console.print()
    if failed:
        console.print(Text(f"Demo FAILED after {elapsed:.1f} s: {failed}", style="bold red"))
        return 1
    console.print(Text(f"Demo complete in {elapsed:.1f} s; nothing left running.",
                       style="bold green"))
    console.print(Text(demo.where_the_time_went(elapsed), style="dim"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
