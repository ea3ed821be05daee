// Group requests (issue 18): one id, 2 to 6 owners, each approving for themself, equal shares.
"use strict";

const { expect } = require("chai");
const { ethers } = require("hardhat");
const { loadFixture, time } = require("@nomicfoundation/hardhat-network-helpers");

const {
  Status,
  CATALOG_HASH,
  PURPOSE,
  PRICE,
  DURATION,
  SCOPES,
  deployLedger,
  request,
  requestGroup,
  sharesOf,
  signApproval,
  earnedAt,
} = require("./helpers");

/** The ledger fixture plus six more owners for the largest group. */
async function deployWithGroup() {
  const f = await deployLedger();
  const signers = await ethers.getSigners();
  return { ...f, many: signers.slice(9, 15) };
}

/** A two-owner group request (owner, owner2) made by company; its id. */
async function pair(f, overrides = {}) {
  return requestGroup(f.ledger, f.company, [f.owner, f.owner2], overrides);
}

/** A two-owner group approved by both; its id and startsAt. */
async function activePair(f, overrides = {}) {
  const id = await pair(f, overrides);
  await f.ledger.connect(f.owner).approve(id);
  await f.ledger.connect(f.owner2).approve(id);
  return { id, startsAt: BigInt((await f.ledger.getRequest(id)).startsAt) };
}

async function deadlineIn(seconds) {
  return BigInt((await time.latest()) + seconds);
}

describe("ConsentLedger group requests", function () {
  describe("requestGroupAccess", function () {
    it("escrows the price under one id and emits GroupAccessRequested once per owner", async function () {
      const { ledger, company, owner, owner2, owner3 } = await loadFixture(deployLedger);
      const owners = [owner.address, owner2.address, owner3.address];
      const tx = ledger
        .connect(company)
        .requestGroupAccess(owners, SCOPES, DURATION, 4, CATALOG_HASH, PURPOSE, { value: PRICE });
      for (const o of owners) {
        await expect(tx)
          .to.emit(ledger, "GroupAccessRequested")
          .withArgs(1n, o, company.address, owners, SCOPES, PRICE, DURATION, 4, CATALOG_HASH, PURPOSE);
      }
      const receipt = await (await tx).wait();
      const topic = ledger.interface.getEvent("GroupAccessRequested").topicHash;
      const logs = receipt.logs.filter((l) => l.topics[0] === topic);
      // Each copy carries its owner at topics[2], the topic a vault's sync filters by.
      expect(logs.map((l) => ethers.getAddress(ethers.dataSlice(l.topics[2], 12)))).to.deep.equal(owners);
      expect(await ethers.provider.getBalance(ledger)).to.equal(PRICE);
      expect(await ledger.escrowHeld()).to.equal(PRICE);
      const r = await ledger.getRequest(1n);
      expect(r.owner).to.equal(ethers.ZeroAddress);
      expect(r.company).to.equal(company.address);
      expect([r.scopes, r.maxReleases, r.price, r.duration, r.status, r.startsAt, r.claimed]).to.deep.equal([
        SCOPES, 4n, PRICE, BigInt(DURATION), Status.Pending, 0n, 0n,
      ]);
    });

    it("takes its id from the same sequence as single requests", async function () {
      const f = await loadFixture(deployLedger);
      expect(await request(f.ledger, f.company, f.owner)).to.equal(1n);
      expect(await pair(f)).to.equal(2n);
      expect(await request(f.ledger, f.company, f.owner)).to.equal(3n);
      expect(await f.ledger.requestCount()).to.equal(3n);
    });

    it("lists the owners in order with equal shares, the remainder to the first", async function () {
      const f = await loadFixture(deployLedger);
      const id = await requestGroup(f.ledger, f.company, [f.owner3, f.owner, f.owner2], { value: 10n });
      const members = await f.ledger.groupMembers(id);
      expect(members.map((m) => m.owner)).to.deep.equal([f.owner3.address, f.owner.address, f.owner2.address]);
      expect(members.map((m) => m.share)).to.deep.equal([4n, 3n, 3n]);
      expect(members.map((m) => m.approved)).to.deep.equal([false, false, false]);
      expect(members.map((m) => m.claimed)).to.deep.equal([0n, 0n, 0n]);
    });

    it("accepts six owners and stores every one", async function () {
      const { ledger, company, many } = await loadFixture(deployWithGroup);
      const id = await requestGroup(ledger, company, many);
      expect((await ledger.groupMembers(id)).map((m) => m.owner)).to.deep.equal(many.map((m) => m.address));
    });

    it("rejects fewer than two owners with GroupTooSmall", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      for (const owners of [[], [owner.address]]) {
        await expect(
          ledger.connect(company).requestGroupAccess(owners, SCOPES, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE }),
        )
          .to.be.revertedWithCustomError(ledger, "GroupTooSmall")
          .withArgs(owners.length, 2);
      }
    });

    it("rejects more than six owners with GroupTooLarge", async function () {
      const { ledger, company, owner, many } = await loadFixture(deployWithGroup);
      const owners = [...many, owner].map((m) => m.address);
      await expect(
        ledger.connect(company).requestGroupAccess(owners, SCOPES, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE }),
      )
        .to.be.revertedWithCustomError(ledger, "GroupTooLarge")
        .withArgs(7, 6);
    });

    it("rejects an owner named twice with DuplicateOwner", async function () {
      const { ledger, company, owner, owner2 } = await loadFixture(deployLedger);
      const owners = [owner.address, owner2.address, owner.address];
      await expect(
        ledger.connect(company).requestGroupAccess(owners, SCOPES, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE }),
      )
        .to.be.revertedWithCustomError(ledger, "DuplicateOwner")
        .withArgs(owner.address);
    });

    it("rejects the zero address as an owner with InvalidOwner", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      const owners = [owner.address, ethers.ZeroAddress];
      await expect(
        ledger.connect(company).requestGroupAccess(owners, SCOPES, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE }),
      )
        .to.be.revertedWithCustomError(ledger, "InvalidOwner")
        .withArgs(ethers.ZeroAddress);
    });

    it("rejects the company among the owners with SelfRequest", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      const owners = [owner.address, company.address];
      await expect(
        ledger.connect(company).requestGroupAccess(owners, SCOPES, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE }),
      )
        .to.be.revertedWithCustomError(ledger, "SelfRequest")
        .withArgs(company.address);
    });

    it("rejects a zero or too large price, a zero duration and empty scopes", async function () {
      const { ledger, company, owner, owner2 } = await loadFixture(deployLedger);
      const owners = [owner.address, owner2.address];
      const ask = (scopes, duration, value) =>
        ledger.connect(company).requestGroupAccess(owners, scopes, duration, 0, CATALOG_HASH, PURPOSE, { value });
      await expect(ask(SCOPES, DURATION, 0n)).to.be.revertedWithCustomError(ledger, "ZeroPrice");
      const tooMuch = 2n ** 96n;
      await ethers.provider.send("hardhat_setBalance", [company.address, ethers.toQuantity(tooMuch * 2n)]);
      await expect(ask(SCOPES, DURATION, tooMuch))
        .to.be.revertedWithCustomError(ledger, "PriceTooLarge")
        .withArgs(tooMuch);
      await expect(ask(SCOPES, 0, PRICE)).to.be.revertedWithCustomError(ledger, "ZeroDuration");
      await expect(ask(0n, DURATION, PRICE)).to.be.revertedWithCustomError(ledger, "EmptyScopes");
    });
  });

  describe("approve", function () {
    it("records each owner's approval and starts the grant when the last one approves", async function () {
      const f = await loadFixture(deployLedger);
      const { ledger, company, owner, owner2, owner3 } = f;
      const id = await requestGroup(ledger, company, [owner, owner2, owner3]);
      await expect(ledger.connect(owner2).approve(id))
        .to.emit(ledger, "GroupMemberApproved")
        .withArgs(id, owner2.address, company.address)
        .and.not.to.emit(ledger, "GroupAccessApproved");
      await ledger.connect(owner).approve(id);
      expect((await ledger.groupMembers(id)).map((m) => m.approved)).to.deep.equal([true, true, false]);
      expect((await ledger.getRequest(id)).status).to.equal(Status.Pending);
      expect(await ledger.isActive(id)).to.equal(false);

      const tx = ledger.connect(owner3).approve(id);
      await expect(tx).to.emit(ledger, "GroupMemberApproved").withArgs(id, owner3.address, company.address);
      const startsAt = BigInt((await ethers.provider.getBlock("latest")).timestamp);
      for (const o of [owner, owner2, owner3]) {
        await expect(tx).to.emit(ledger, "GroupAccessApproved").withArgs(id, o.address, company.address, startsAt);
      }
      const r = await ledger.getRequest(id);
      expect(r.status).to.equal(Status.Active);
      expect(r.startsAt).to.equal(startsAt);
      expect(await ledger.isActive(id)).to.equal(true);
      expect(await ledger.covers(id, SCOPES)).to.equal(true);
    });

    it("rejects an owner approving twice with AlreadyApproved", async function () {
      const f = await loadFixture(deployLedger);
      const id = await requestGroup(f.ledger, f.company, [f.owner, f.owner2, f.owner3]);
      await f.ledger.connect(f.owner2).approve(id);
      await expect(f.ledger.connect(f.owner2).approve(id))
        .to.be.revertedWithCustomError(f.ledger, "AlreadyApproved")
        .withArgs(id, f.owner2.address);
    });

    it("rejects anyone but an owner, the company included, with NotRequestOwner", async function () {
      const f = await loadFixture(deployLedger);
      const id = await pair(f);
      for (const who of [f.owner3, f.company, f.stranger]) {
        await expect(f.ledger.connect(who).approve(id))
          .to.be.revertedWithCustomError(f.ledger, "NotRequestOwner")
          .withArgs(id, who.address);
      }
    });

    it("rejects approving an active, denied or cancelled group with RequestNotPending", async function () {
      const f = await loadFixture(deployLedger);
      const { id } = await activePair(f);
      await expect(f.ledger.connect(f.owner).approve(id))
        .to.be.revertedWithCustomError(f.ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
      const denied = await pair(f);
      await f.ledger.connect(f.owner2).deny(denied);
      await expect(f.ledger.connect(f.owner).approve(denied))
        .to.be.revertedWithCustomError(f.ledger, "RequestNotPending")
        .withArgs(denied, Status.Denied);
      const cancelled = await pair(f);
      await f.ledger.connect(f.company).cancel(cancelled);
      await expect(f.ledger.connect(f.owner).approve(cancelled))
        .to.be.revertedWithCustomError(f.ledger, "RequestNotPending")
        .withArgs(cancelled, Status.Cancelled);
    });
  });

  describe("approveBySig", function () {
    it("takes each owner's own signature, relayed by anyone: the signer is the owner who approves", async function () {
      const f = await loadFixture(deployLedger);
      const { ledger, company, owner, owner2, relayer } = f;
      const id = await pair(f);
      const deadline = await deadlineIn(3600);
      const bySecond = await signApproval(owner2, ledger, id, deadline);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, bySecond))
        .to.emit(ledger, "GroupMemberApproved")
        .withArgs(id, owner2.address, company.address);
      expect((await ledger.groupMembers(id)).map((m) => m.approved)).to.deep.equal([false, true]);
      const byFirst = await signApproval(owner, ledger, id, deadline);
      await expect(ledger.connect(company).approveBySig(id, deadline, byFirst)).to.emit(ledger, "GroupAccessApproved");
      expect((await ledger.getRequest(id)).status).to.equal(Status.Active);
    });

    it("rejects a replayed owner signature with AlreadyApproved, then RequestNotPending", async function () {
      const f = await loadFixture(deployLedger);
      const id = await pair(f);
      const deadline = await deadlineIn(3600);
      const signature = await signApproval(f.owner, f.ledger, id, deadline);
      await f.ledger.connect(f.relayer).approveBySig(id, deadline, signature);
      await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, signature))
        .to.be.revertedWithCustomError(f.ledger, "AlreadyApproved")
        .withArgs(id, f.owner.address);
      await f.ledger.connect(f.owner2).approve(id);
      await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, signature))
        .to.be.revertedWithCustomError(f.ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
    });

    it("rejects a signature of no owner with InvalidGroupApprovalSignature naming the signer", async function () {
      const f = await loadFixture(deployLedger);
      const id = await pair(f);
      const deadline = await deadlineIn(3600);
      for (const who of [f.owner3, f.company]) {
        const signature = await signApproval(who, f.ledger, id, deadline);
        await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, signature))
          .to.be.revertedWithCustomError(f.ledger, "InvalidGroupApprovalSignature")
          .withArgs(id, who.address);
      }
      await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, "0x1234"))
        .to.be.revertedWithCustomError(f.ledger, "InvalidGroupApprovalSignature")
        .withArgs(id, ethers.ZeroAddress);
    });

    it("rejects an owner's signature after its deadline with ApprovalDeadlinePassed", async function () {
      const f = await loadFixture(deployLedger);
      const id = await pair(f);
      const deadline = await deadlineIn(10);
      const signature = await signApproval(f.owner, f.ledger, id, deadline);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, signature))
        .to.be.revertedWithCustomError(f.ledger, "ApprovalDeadlinePassed")
        .withArgs(deadline, deadline + 1n);
    });

    it("asks an ERC-1271 wallet among the owners at the moment of use", async function () {
      const f = await loadFixture(deployLedger);
      const wallet = await ethers.deployContract("ERC1271WalletMock", [f.owner3.address]);
      const walletAddress = await wallet.getAddress();
      const id = await requestGroup(f.ledger, f.company, [f.owner, walletAddress]);
      const deadline = await deadlineIn(3600);
      const byStranger = await signApproval(f.stranger, f.ledger, id, deadline);
      await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, byStranger))
        .to.be.revertedWithCustomError(f.ledger, "InvalidGroupApprovalSignature")
        .withArgs(id, f.stranger.address);
      const bySigner = await signApproval(f.owner3, f.ledger, id, deadline);
      await expect(f.ledger.connect(f.relayer).approveBySig(id, deadline, bySigner))
        .to.emit(f.ledger, "GroupMemberApproved")
        .withArgs(id, walletAddress, f.company.address);
      expect((await f.ledger.groupMembers(id)).map((m) => m.approved)).to.deep.equal([false, true]);
    });
  });

  describe("deny and cancel", function () {
    it("refunds the company in full on any owner's deny, even after another approved", async function () {
      const f = await loadFixture(deployLedger);
      const { ledger, company, owner, owner2, owner3 } = f;
      const id = await requestGroup(ledger, company, [owner, owner2, owner3]);
      await ledger.connect(owner).approve(id);
      const tx = ledger.connect(owner3).deny(id);
      for (const o of [owner, owner2, owner3]) {
        await expect(tx).to.emit(ledger, "GroupAccessDenied").withArgs(id, o.address, company.address, owner3.address);
      }
      expect((await ledger.getRequest(id)).status).to.equal(Status.Denied);
      expect(await ledger.owed(company)).to.equal(PRICE);
      expect(await ledger.escrowHeld()).to.equal(0n);
      for (const o of [owner, owner2, owner3]) expect(await ledger.owed(o)).to.equal(0n);
    });

    it("rejects a deny by anyone but an owner, or of an active group", async function () {
      const f = await loadFixture(deployLedger);
      const pending = await pair(f);
      await expect(f.ledger.connect(f.owner3).deny(pending))
        .to.be.revertedWithCustomError(f.ledger, "NotRequestOwner")
        .withArgs(pending, f.owner3.address);
      const { id } = await activePair(f);
      await expect(f.ledger.connect(f.owner2).deny(id))
        .to.be.revertedWithCustomError(f.ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
    });

    it("lets the company cancel a pending group, telling every owner with RequestCancelled", async function () {
      const f = await loadFixture(deployLedger);
      const id = await pair(f);
      await f.ledger.connect(f.owner).approve(id);
      await expect(f.ledger.connect(f.owner).cancel(id))
        .to.be.revertedWithCustomError(f.ledger, "NotRequestCompany")
        .withArgs(id, f.owner.address);
      const tx = f.ledger.connect(f.company).cancel(id);
      await expect(tx).to.emit(f.ledger, "RequestCancelled").withArgs(id, f.owner.address, f.company.address);
      await expect(tx).to.emit(f.ledger, "RequestCancelled").withArgs(id, f.owner2.address, f.company.address);
      expect(await f.ledger.owed(f.company)).to.equal(PRICE);
      expect(await f.ledger.escrowHeld()).to.equal(0n);
    });
  });

  describe("earning, claim and revoke", function () {
    it("streams each owner's share pro rata; each claims its own", async function () {
      const f = await loadFixture(deployLedger);
      const { ledger, owner, owner2 } = f;
      const { id, startsAt } = await activePair(f, { value: PRICE + 1n });
      const [first, second] = sharesOf(PRICE + 1n, 2);
      await time.setNextBlockTimestamp(startsAt + 900n);
      const firstEarned = earnedAt(first, startsAt, DURATION, startsAt + 900n);
      await expect(ledger.connect(owner).claim(id))
        .to.emit(ledger, "EarningsClaimed")
        .withArgs(id, owner.address, firstEarned);
      expect(await ledger.owed(owner)).to.equal(firstEarned);
      await time.setNextBlockTimestamp(startsAt + 1800n);
      await ledger.connect(owner2).claim(id);
      expect(await ledger.owed(owner2)).to.equal(earnedAt(second, startsAt, DURATION, startsAt + 1800n));
      const members = await ledger.groupMembers(id);
      expect(members.map((m) => m.claimed)).to.deep.equal([firstEarned, await ledger.owed(owner2)]);
      expect((await ledger.getRequest(id)).claimed).to.equal(firstEarned + (await ledger.owed(owner2)));
      await expect(ledger.connect(f.owner3).claim(id))
        .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
        .withArgs(id, f.owner3.address);
    });

    it("pays each owner exactly its share after expiry, the remainder to the first, to the wei", async function () {
      const f = await loadFixture(deployLedger);
      const { ledger, company, owner, owner2, owner3 } = f;
      const price = 1000n; // 334 + 333 + 333
      const id = await requestGroup(ledger, company, [owner, owner2, owner3], { value: price, duration: 7 });
      for (const o of [owner, owner2, owner3]) await ledger.connect(o).approve(id);
      await time.increase(10);
      expect(await ledger.earned(id)).to.equal(price);
      expect((await ledger.groupMembers(id)).map((m) => m.claimable)).to.deep.equal([334n, 333n, 333n]);
      await ledger.connect(owner3).claimMany([id]);
      await ledger.connect(owner).claim(id);
      await ledger.connect(owner2).claim(id);
      expect([await ledger.owed(owner), await ledger.owed(owner2), await ledger.owed(owner3)]).to.deep.equal([
        334n, 333n, 333n,
      ]);
      expect(await ledger.escrowHeld()).to.equal(0n);
      expect(await ledger.claimable(id)).to.equal(0n);
      await expect(ledger.connect(owner).claim(id)).to.be.revertedWithCustomError(ledger, "NothingToClaim").withArgs(id);
    });

    it("ends the grant for everyone on any owner's revoke, with a single grant's pro-rata split", async function () {
      const f = await loadFixture(deployLedger);
      const { ledger, company, owner, owner2, owner3 } = f;
      const price = PRICE + 2n; // shares: PRICE/3 + 2, PRICE/3, PRICE/3
      const id = await requestGroup(ledger, company, [owner, owner2, owner3], { value: price });
      for (const o of [owner, owner2, owner3]) await ledger.connect(o).approve(id);
      const startsAt = BigInt((await ledger.getRequest(id)).startsAt);
      const shares = sharesOf(price, 3);
      await time.setNextBlockTimestamp(startsAt + 600n);
      await ledger.connect(owner).claim(id); // an earlier claim is not paid twice
      const at = startsAt + 1234n;
      await time.setNextBlockTimestamp(at);
      const earned = shares.map((s) => earnedAt(s, startsAt, DURATION, at));
      const refund = price - earned.reduce((a, b) => a + b, 0n);
      const tx = ledger.connect(owner2).revoke(id);
      for (const [i, o] of [owner, owner2, owner3].entries()) {
        await expect(tx)
          .to.emit(ledger, "GroupAccessRevoked")
          .withArgs(id, o.address, company.address, owner2.address, earned[i], refund);
      }
      expect((await ledger.getRequest(id)).status).to.equal(Status.Revoked);
      expect(await ledger.isActive(id)).to.equal(false);
      expect([await ledger.owed(owner), await ledger.owed(owner2), await ledger.owed(owner3)]).to.deep.equal(earned);
      expect(await ledger.owed(company)).to.equal(refund);
      expect(await ledger.escrowHeld()).to.equal(0n);
      expect(await ethers.provider.getBalance(ledger)).to.equal(price);
      // Frozen: time passing earns nothing more, and nobody has anything left to claim.
      await time.increase(600);
      expect(await ledger.earned(id)).to.equal(price - refund);
      expect(await ledger.claimable(id)).to.equal(0n);
      for (const o of [owner, owner2, owner3]) {
        await expect(ledger.connect(o).claim(id)).to.be.revertedWithCustomError(ledger, "NothingToClaim");
      }
    });

    it("rejects a revoke by anyone but an owner, of a pending, revoked or expired group", async function () {
      const f = await loadFixture(deployLedger);
      const pending = await pair(f);
      await expect(f.ledger.connect(f.owner).revoke(pending))
        .to.be.revertedWithCustomError(f.ledger, "GrantNotActive")
        .withArgs(pending, Status.Pending);
      const { id, startsAt } = await activePair(f);
      await expect(f.ledger.connect(f.company).revoke(id))
        .to.be.revertedWithCustomError(f.ledger, "NotRequestOwner")
        .withArgs(id, f.company.address);
      await f.ledger.connect(f.owner).revoke(id);
      await expect(f.ledger.connect(f.owner2).revoke(id))
        .to.be.revertedWithCustomError(f.ledger, "GrantNotActive")
        .withArgs(id, Status.Revoked);
      const later = await activePair(f);
      await time.setNextBlockTimestamp(later.startsAt + BigInt(DURATION));
      await expect(f.ledger.connect(f.owner2).revoke(later.id))
        .to.be.revertedWithCustomError(f.ledger, "GrantExpired")
        .withArgs(later.id, later.startsAt + BigInt(DURATION));
      expect(startsAt).to.be.greaterThan(0n);
    });

    it("claims single and group grants together in claimMany", async function () {
      const f = await loadFixture(deployLedger);
      const single = await request(f.ledger, f.company, f.owner);
      await f.ledger.connect(f.owner).approve(single);
      const { id } = await activePair(f);
      await time.increase(DURATION);
      await f.ledger.connect(f.owner).claimMany([single, id]);
      expect(await f.ledger.owed(f.owner)).to.equal(PRICE + PRICE / 2n);
    });
  });

  describe("views", function () {
    it("groupMembers is empty for a single request and rejects an unknown id", async function () {
      const f = await loadFixture(deployLedger);
      const single = await request(f.ledger, f.company, f.owner);
      expect(await f.ledger.groupMembers(single)).to.deep.equal([]);
      await expect(f.ledger.groupMembers(9n)).to.be.revertedWithCustomError(f.ledger, "UnknownRequest").withArgs(9n);
    });

    it("earned and claimable add up every owner's share", async function () {
      const f = await loadFixture(deployLedger);
      const { id, startsAt } = await activePair(f, { value: PRICE + 1n });
      await time.increaseTo(startsAt + 100n);
      const expected = sharesOf(PRICE + 1n, 2)
        .map((s) => earnedAt(s, startsAt, DURATION, startsAt + 100n))
        .reduce((a, b) => a + b, 0n);
      expect(await f.ledger.earned(id)).to.equal(expected);
      expect(await f.ledger.claimable(id)).to.equal(expected);
      const members = await f.ledger.groupMembers(id);
      expect(members[0].claimable + members[1].claimable).to.equal(expected);
    });
  });

  describe("reentrancy (THREATS row 21)", function () {
    async function attackerInGroup() {
      const f = await deployLedger();
      const attacker = await ethers.deployContract("ReentrancyAttacker", [await f.ledger.getAddress()]);
      const id = await requestGroup(f.ledger, f.company, [await attacker.getAddress(), f.owner2.address]);
      await attacker.approve(id);
      await f.ledger.connect(f.owner2).approve(id);
      return { ...f, attacker, id };
    }

    it("a group owner re-entering claim on withdraw gains nothing", async function () {
      const { ledger, attacker, id } = await loadFixture(attackerInGroup);
      await time.increase(600);
      await attacker.claim(id);
      const owed = await ledger.owed(attacker);
      await attacker.setMode(2, id); // Claim
      await attacker.withdraw();
      // Paid exactly what was owed; the re-entered claim credited only what the share earned
      // since the first claim (one more block), to the owed balance.
      expect(await ethers.provider.getBalance(attacker)).to.equal(owed);
      expect(await attacker.reentries()).to.equal(1n);
      const [member] = await ledger.groupMembers(id);
      expect(member.claimed).to.equal(owed + (await ledger.owed(attacker)));
    });

    it("a group owner re-entering revoke on withdraw settles once, and the price is conserved", async function () {
      const { ledger, attacker, id, company, owner2 } = await loadFixture(attackerInGroup);
      await time.increase(600);
      await attacker.claim(id);
      await attacker.setMode(3, id); // Revoke
      await attacker.withdraw();
      expect((await ledger.getRequest(id)).status).to.equal(Status.Revoked);
      await attacker.setMode(0, 0); // Accept
      await attacker.withdraw();
      await ledger.connect(owner2).withdraw();
      await ledger.connect(company).withdraw();
      expect(await ethers.provider.getBalance(ledger)).to.equal(0n);
      expect(await ledger.escrowHeld()).to.equal(0n);
      const members = await ledger.groupMembers(id);
      expect(await ethers.provider.getBalance(attacker)).to.equal(members[0].claimed);
    });
  });
});
