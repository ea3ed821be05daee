// A seeded random sequence of ledger operations checked step by step against a model.
// After EVERY step: the ledger's balance equals escrow held plus all owed balances, and the
// escrow and every owed balance equal the model's (THREATS row 22); no withdrawal pays out more
// than was owed, and at the end every wei paid in has come out exactly once. SEQ_SEED, SEQ_STEPS
// and SEQ_VERBOSE=1 override the seed (default 20251122), the step count (default 600) and
// print how often each operation ran. Nearly half of the requests are group requests (2 or 3
// owners, equal shares, the remainder to the first), approved, denied, revoked and claimed by
// their owners one by one.
"use strict";

const { expect } = require("chai");
const { ethers } = require("hardhat");
const { loadFixture, mine, time } = require("@nomicfoundation/hardhat-network-helpers");

const { Status, CATALOG_HASH, deployLedger, signApproval, earnedAt, sharesOf } = require("./helpers");

const SEED = Number(process.env.SEQ_SEED || 20251122);
const STEPS = Number(process.env.SEQ_STEPS || 600);
// Every transaction gets a fixed gas limit: no gas estimation, so a transaction that is meant
// to revert is still mined, in a block whose timestamp the test chose beforehand.
const GAS = { gasLimit: 500000 };

/** mulberry32: a small, fast, seedable PRNG (so a failing sequence can be replayed). */
function prng(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("ConsentLedger random sequence", function () {
  it(`conserves money after every one of ${STEPS} seeded operations (THREATS row 22)`, async function () {
    const f = await loadFixture(deployLedger);
    const { ledger } = f;
    const owners = [f.owner, f.owner2, f.owner3];
    const companies = [f.company, f.company2, f.company3];
    const accounts = [...owners, ...companies];
    const rand = prng(SEED);
    const pick = (list) => list[Math.floor(rand() * list.length)];
    const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

    // The model: what the ledger must hold, computed independently. A single request is a group
    // of one owner whose share is the whole price.
    // id -> {group, company, owners, shares, approved (Set), claimed (Map owner -> wei), price, duration, status, startsAt}
    const requests = new Map();
    const owed = new Map(accounts.map((a) => [a.address, 0n]));
    const credited = new Map(accounts.map((a) => [a.address, 0n]));
    const withdrawn = new Map(accounts.map((a) => [a.address, 0n]));
    let escrow = 0n;
    let paidIn = 0n;
    let now = await time.latest();
    const counts = {};

    const credit = (address, amount) => {
      owed.set(address, owed.get(address) + amount);
      credited.set(address, credited.get(address) + amount);
    };
    /** What `owner`'s share of `r` has earned now (frozen at its claimed amount once revoked). */
    const earnedNow = (r, owner) => {
      if (r.status === Status.Revoked) return r.claimed.get(owner);
      if (r.status !== Status.Active) return 0n;
      return earnedAt(r.shares[r.owners.indexOf(owner)], r.startsAt, r.duration, now);
    };
    const idsWhere = (predicate) => [...requests.entries()].filter(([, r]) => predicate(r)).map(([id]) => id);
    const shuffled = (list) => {
      const copy = [...list];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [copy[i], copy[j]] = [copy[j], copy[i]];
      }
      return copy;
    };
    const signerOf = (address) => accounts.find((a) => a.address === address);

    async function checkInvariants(step, op) {
      const balance = await ethers.provider.getBalance(ledger);
      const held = await ledger.escrowHeld();
      let owedSum = 0n;
      for (const a of accounts) {
        const onChain = await ledger.owed(a);
        expect(onChain, `step ${step} (${op}): owed[${a.address}]`).to.equal(owed.get(a.address));
        expect(withdrawn.get(a.address), `step ${step}: withdrew more than credited`).to.be.lte(
          credited.get(a.address),
        );
        owedSum += onChain;
      }
      expect(held, `step ${step} (${op}): escrowHeld`).to.equal(escrow);
      expect(balance, `step ${step} (${op}): balance == escrowHeld + sum(owed)`).to.equal(held + owedSum);
    }

    /** One operation; returns its name. Time has already been set for the next block. */
    async function step() {
      const roll = rand();
      if (roll < 0.2 || requests.size < 3) {
        const company = pick(companies);
        const owner = pick(owners);
        // Tiny prices exercise rounding; large ones the 96-bit field.
        const price = rand() < 0.3 ? BigInt(int(1, 1000)) : BigInt(int(1, 10 ** 6)) * 10n ** 12n;
        const duration = int(1, 5000);
        const scopes = BigInt(int(1, 2 ** 16 - 1));
        const id = BigInt(requests.size + 1);
        const group = rand() < 0.45;
        const members = group ? shuffled(owners).slice(0, int(2, 3)).map((o) => o.address) : [owner.address];
        if (group) {
          await expect(
            ledger.connect(company).requestGroupAccess(members, scopes, duration, int(0, 5), CATALOG_HASH, "seq", {
              value: price,
              ...GAS,
            }),
          ).to.emit(ledger, "GroupAccessRequested");
        } else {
          await expect(
            ledger.connect(company).requestAccess(owner, scopes, duration, int(0, 5), CATALOG_HASH, "seq", {
              value: price,
              ...GAS,
            }),
          ).to.emit(ledger, "AccessRequested");
        }
        requests.set(id, {
          group,
          company: company.address,
          owners: members,
          shares: sharesOf(price, members.length),
          approved: new Set(),
          claimed: new Map(members.map((m) => [m, 0n])),
          price,
          duration,
          status: Status.Pending,
          startsAt: 0,
        });
        escrow += price;
        paidIn += price;
        return group ? "request-group" : "request";
      }
      const pending = idsWhere((r) => r.status === Status.Pending);
      const active = idsWhere((r) => r.status === Status.Active);
      if (roll < 0.32 && pending.length > 0) {
        const id = pick(pending);
        const r = requests.get(id);
        const approver = pick(r.owners.filter((o) => !r.approved.has(o)));
        const last = r.approved.size + 1 === r.owners.length;
        const event = !r.group ? "AccessApproved" : last ? "GroupAccessApproved" : "GroupMemberApproved";
        if (rand() < 0.5) {
          await expect(ledger.connect(signerOf(approver)).approve(id, GAS)).to.emit(ledger, event);
        } else {
          const deadline = now + int(0, 100);
          const signature = await signApproval(signerOf(approver), ledger, id, deadline);
          await expect(ledger.connect(pick(companies)).approveBySig(id, deadline, signature, GAS)).to.emit(ledger, event);
        }
        r.approved.add(approver);
        if (!last) return "approve-member";
        r.status = Status.Active;
        r.startsAt = now;
        return r.group ? "approve-group" : "approve";
      }
      if (roll < 0.37 && pending.length > 0) {
        const id = pick(pending);
        const r = requests.get(id);
        if (rand() < 0.5) {
          await expect(ledger.connect(signerOf(pick(r.owners))).deny(id, GAS)).to.emit(
            ledger,
            r.group ? "GroupAccessDenied" : "AccessDenied",
          );
          r.status = Status.Denied;
        } else {
          await expect(ledger.connect(signerOf(r.company)).cancel(id, GAS)).to.emit(ledger, "RequestCancelled");
          r.status = Status.Cancelled;
        }
        credit(r.company, r.price);
        escrow -= r.price;
        return "refund";
      }
      if (roll < 0.47 && active.length > 0) {
        // Mostly grants still running; sometimes any, which may have expired.
        const running = active.filter((i) => now < requests.get(i).startsAt + requests.get(i).duration);
        const id = pick(running.length > 0 && rand() < 0.8 ? running : active);
        const r = requests.get(id);
        const expiresAt = r.startsAt + r.duration;
        const revoker = pick(r.owners);
        const tx = ledger.connect(signerOf(revoker)).revoke(id, GAS);
        if (now >= expiresAt) {
          await expect(tx).to.be.revertedWithCustomError(ledger, "GrantExpired").withArgs(id, expiresAt);
          return "revoke-expired";
        }
        const earned = r.owners.map((o) => earnedNow(r, o));
        const refund = r.price - earned.reduce((a, b) => a + b, 0n);
        if (r.group) {
          for (const [i, o] of r.owners.entries()) {
            await expect(tx)
              .to.emit(ledger, "GroupAccessRevoked")
              .withArgs(id, o, r.company, revoker, earned[i], refund);
          }
        } else {
          await expect(tx).to.emit(ledger, "AccessRevoked").withArgs(id, revoker, r.company, earned[0], refund);
        }
        for (const [i, o] of r.owners.entries()) {
          credit(o, earned[i] - r.claimed.get(o));
          escrow -= earned[i] - r.claimed.get(o);
          r.claimed.set(o, earned[i]);
        }
        credit(r.company, refund);
        escrow -= refund;
        r.status = Status.Revoked;
        return r.group ? "revoke-group" : "revoke";
      }
      if (roll < 0.62) {
        const owner = pick(owners);
        const mine = idsWhere((r) => r.owners.includes(owner.address) && r.status !== Status.Pending);
        if (mine.length === 0) return "skip";
        const batch = rand() < 0.3;
        const ids = batch ? mine.filter(() => rand() < 0.6) : [pick(mine)];
        const unclaimed = (id) => earnedNow(requests.get(id), owner.address) - requests.get(id).claimed.get(owner.address);
        const amounts = ids.map(unclaimed);
        const total = amounts.reduce((x, y) => x + y, 0n);
        const tx = batch ? ledger.connect(owner).claimMany(ids, GAS) : ledger.connect(owner).claim(ids[0], GAS);
        if (total === 0n) {
          await expect(tx)
            .to.be.revertedWithCustomError(ledger, "NothingToClaim")
            .withArgs(batch ? 0n : ids[0]);
          return "claim-nothing";
        }
        await expect(tx).to.emit(ledger, "EarningsClaimed");
        ids.forEach((id, i) => {
          const r = requests.get(id);
          r.claimed.set(owner.address, r.claimed.get(owner.address) + amounts[i]);
        });
        credit(owner.address, total);
        escrow -= total;
        return batch ? "claimMany" : "claim";
      }
      if (roll < 0.77) {
        const account = pick(accounts);
        const amount = owed.get(account.address);
        if (amount === 0n) {
          await expect(ledger.connect(account).withdraw(GAS))
            .to.be.revertedWithCustomError(ledger, "NothingOwed")
            .withArgs(account.address);
          return "withdraw-nothing";
        }
        const before = await ethers.provider.getBalance(account);
        const receipt = await (await ledger.connect(account).withdraw(GAS)).wait();
        const after = await ethers.provider.getBalance(account);
        expect(after - before + receipt.fee, "withdrawal paid exactly what was owed").to.equal(amount);
        owed.set(account.address, 0n);
        withdrawn.set(account.address, withdrawn.get(account.address) + amount);
        return "withdraw";
      }
      return badInput(pending, active);
    }

    /** A transition that must revert with its own named error. */
    async function badInput(pending, active) {
      const unknown = BigInt(requests.size + int(1, 5));
      const someone = pick(accounts);
      const choice = int(0, 5);
      if (choice === 0) {
        await expect(ledger.connect(someone).approve(unknown, GAS))
          .to.be.revertedWithCustomError(ledger, "UnknownRequest")
          .withArgs(unknown);
      } else if (choice === 1 && pending.length > 0) {
        const id = pick(pending);
        const r = requests.get(id);
        const owner = pick(r.owners);
        await expect(ledger.connect(signerOf(owner)).cancel(id, GAS))
          .to.be.revertedWithCustomError(ledger, "NotRequestCompany")
          .withArgs(id, owner);
      } else if (choice === 2 && active.length > 0) {
        const id = pick(active);
        await expect(ledger.connect(signerOf(pick(requests.get(id).owners))).approve(id, GAS))
          .to.be.revertedWithCustomError(ledger, "RequestNotPending")
          .withArgs(id, Status.Active);
      } else if (choice === 3 && pending.length > 0) {
        const id = pick(pending);
        await expect(ledger.connect(signerOf(pick(requests.get(id).owners))).revoke(id, GAS))
          .to.be.revertedWithCustomError(ledger, "GrantNotActive")
          .withArgs(id, Status.Pending);
      } else if (choice === 4 && active.length > 0) {
        const id = pick(active);
        const r = requests.get(id);
        await expect(ledger.connect(signerOf(r.company)).revoke(id, GAS))
          .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
          .withArgs(id, r.company);
      } else {
        const company = pick(companies);
        await expect(ledger.connect(company).requestAccess(pick(owners), 1n, 60, 0, CATALOG_HASH, "x", GAS))
          .to.be.revertedWithCustomError(ledger, "ZeroPrice");
      }
      return "bad-input";
    }

    for (let i = 0; i < STEPS; i++) {
      // Mostly a few seconds between blocks, sometimes long enough for grants to expire.
      now += rand() < 0.1 ? int(500, 6000) : int(1, 30);
      await time.setNextBlockTimestamp(now);
      const op = await step();
      counts[op] = (counts[op] || 0) + 1;
      if (op === "skip") {
        await mine(); // use up the chosen timestamp
      }
      await checkInvariants(i, op);
    }

    if (process.env.SEQ_VERBOSE) console.log(counts);
    // Every kind of operation ran.
    for (const op of [
      "request",
      "request-group",
      "approve",
      "approve-member",
      "approve-group",
      "refund",
      "revoke",
      "revoke-group",
      "claim",
      "claimMany",
      "withdraw",
      "bad-input",
    ]) {
      expect(counts[op] || 0, `operation ${op} never ran: ${JSON.stringify(counts)}`).to.be.greaterThan(0);
    }

    // Wind everything down: the ledger ends empty and every wei paid in came out exactly once.
    now += 10000;
    await time.setNextBlockTimestamp(now);
    for (const [id, r] of requests) {
      if (r.status === Status.Pending) {
        await ledger.connect(signerOf(r.company)).cancel(id, GAS);
        credit(r.company, r.price);
        escrow -= r.price;
        r.status = Status.Cancelled;
      } else {
        for (const o of r.owners) {
          const amount = earnedNow(r, o) - r.claimed.get(o);
          if (amount === 0n) continue;
          await ledger.connect(signerOf(o)).claim(id, GAS);
          credit(o, amount);
          escrow -= amount;
          r.claimed.set(o, r.claimed.get(o) + amount);
        }
      }
    }
    for (const account of accounts) {
      const amount = owed.get(account.address);
      if (amount > 0n) {
        await ledger.connect(account).withdraw(GAS);
        withdrawn.set(account.address, withdrawn.get(account.address) + amount);
        owed.set(account.address, 0n);
      }
    }
    await checkInvariants(STEPS, "wind-down");
    expect(await ethers.provider.getBalance(ledger)).to.equal(0n);
    expect(escrow).to.equal(0n);
    let totalWithdrawn = 0n;
    for (const a of accounts) {
      expect(withdrawn.get(a.address)).to.equal(credited.get(a.address));
      totalWithdrawn += withdrawn.get(a.address);
    }
    expect(totalWithdrawn).to.equal(paidIn);
  });
});
