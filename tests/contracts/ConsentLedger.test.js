// ConsentLedger: every transition, every named revert, signatures, views and reentrancy.
"use strict";

const { expect } = require("chai");
const { ethers, network } = require("hardhat");
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
  domainOf,
  signApproval,
  malleate,
  earnedAt,
} = require("./helpers");

/** A ledger with one pending request (id 1) from `company` to `owner`. */
async function pendingFixture() {
  const f = await deployLedger();
  const id = await request(f.ledger, f.company, f.owner);
  return { ...f, id };
}

/** A ledger with one grant (id 1) approved at the returned `startsAt`. */
async function activeFixture() {
  const f = await pendingFixture();
  const startsAt = (await time.latest()) + 10;
  await time.setNextBlockTimestamp(startsAt);
  await f.ledger.connect(f.owner).approve(f.id);
  return { ...f, startsAt };
}

/** Asserts the ledger holds exactly escrow plus the owed balances of `accounts` (THREATS row 22). */
async function expectConserved(ledger, accounts) {
  let owedSum = 0n;
  for (const account of accounts) owedSum += await ledger.owed(account);
  const balance = await ethers.provider.getBalance(await ledger.getAddress());
  expect(balance).to.equal((await ledger.escrowHeld()) + owedSum);
}

describe("ConsentLedger", function () {
  describe("EIP-712 domain and type hash", function () {
    it("exposes the approval type hash of the agreed type string", async function () {
      const { ledger } = await loadFixture(deployLedger);
      expect(await ledger.APPROVAL_TYPEHASH()).to.equal(ethers.id("Approval(uint256 requestId,uint256 deadline)"));
    });

    it("exposes the domain separator ethers computes for name ConsentLedger, version 1", async function () {
      const { ledger } = await loadFixture(deployLedger);
      const expected = ethers.TypedDataEncoder.hashDomain(await domainOf(ledger));
      expect(await ledger.domainSeparator()).to.equal(expected);
    });

    it("reports its domain through ERC-5267 eip712Domain()", async function () {
      const { ledger } = await loadFixture(deployLedger);
      const domain = await ledger.eip712Domain();
      expect(domain.name).to.equal("ConsentLedger");
      expect(domain.version).to.equal("1");
      expect(domain.chainId).to.equal((await ethers.provider.getNetwork()).chainId);
      expect(domain.verifyingContract).to.equal(await ledger.getAddress());
    });
  });

  describe("requestAccess", function () {
    it("escrows the payment, stores the request and emits AccessRequested", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      await expect(
        ledger.connect(company).requestAccess(owner, SCOPES, DURATION, 5, CATALOG_HASH, PURPOSE, { value: PRICE }),
      )
        .to.emit(ledger, "AccessRequested")
        .withArgs(1n, owner.address, company.address, SCOPES, PRICE, DURATION, 5, CATALOG_HASH, PURPOSE);
      expect(await ethers.provider.getBalance(ledger)).to.equal(PRICE);

      const r = await ledger.getRequest(1);
      expect(r.company).to.equal(company.address);
      expect(r.scopes).to.equal(SCOPES);
      expect(r.maxReleases).to.equal(5n);
      expect(r.owner).to.equal(owner.address);
      expect(r.price).to.equal(PRICE);
      expect(r.startsAt).to.equal(0n);
      expect(r.duration).to.equal(BigInt(DURATION));
      expect(r.status).to.equal(Status.Pending);
      expect(r.claimed).to.equal(0n);
      expect(await ledger.escrowHeld()).to.equal(PRICE);
      expect(await ledger.requestCount()).to.equal(1n);
    });

    it("numbers requests from 1 and returns the id", async function () {
      const { ledger, company, company2, owner, owner2 } = await loadFixture(deployLedger);
      const id = await ledger
        .connect(company)
        .requestAccess.staticCall(owner, SCOPES, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE });
      expect(id).to.equal(1n);
      expect(await request(ledger, company, owner)).to.equal(1n);
      expect(await request(ledger, company2, owner2, { value: 7n })).to.equal(2n);
      expect(await ledger.escrowHeld()).to.equal(PRICE + 7n);
    });

    it("stores the widest values each field allows", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      const maxPrice = 2n ** 96n - 1n;
      await network.provider.send("hardhat_setBalance", [company.address, ethers.toQuantity(2n ** 100n)]);
      await request(ledger, company, owner, {
        scopes: 2n ** 64n - 1n,
        duration: 2 ** 32 - 1,
        maxReleases: 2 ** 32 - 1,
        value: maxPrice,
      });
      const r = await ledger.getRequest(1);
      expect(r.scopes).to.equal(2n ** 64n - 1n);
      expect(r.duration).to.equal(2n ** 32n - 1n);
      expect(r.maxReleases).to.equal(2n ** 32n - 1n);
      expect(r.price).to.equal(maxPrice);
      expect(r.owner).to.equal(owner.address);
      expect(r.company).to.equal(company.address);
      expect(r.status).to.equal(Status.Pending);
    });

    it("rejects a zero price with ZeroPrice (THREATS row 17)", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      await expect(request(ledger, company, owner, { value: 0n })).to.be.revertedWithCustomError(ledger, "ZeroPrice");
    });

    it("rejects a price above 2^96 - 1 with PriceTooLarge", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      await network.provider.send("hardhat_setBalance", [company.address, ethers.toQuantity(2n ** 100n)]);
      await expect(request(ledger, company, owner, { value: 2n ** 96n }))
        .to.be.revertedWithCustomError(ledger, "PriceTooLarge")
        .withArgs(2n ** 96n);
    });

    it("rejects a zero duration with ZeroDuration (THREATS row 17)", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      await expect(request(ledger, company, owner, { duration: 0 })).to.be.revertedWithCustomError(
        ledger,
        "ZeroDuration",
      );
    });

    it("rejects empty scopes with EmptyScopes (THREATS row 17)", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      await expect(request(ledger, company, owner, { scopes: 0n })).to.be.revertedWithCustomError(
        ledger,
        "EmptyScopes",
      );
    });

    it("rejects the zero address as owner with InvalidOwner", async function () {
      const { ledger, company } = await loadFixture(deployLedger);
      await expect(request(ledger, company, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(ledger, "InvalidOwner")
        .withArgs(ethers.ZeroAddress);
    });

    it("rejects a company asking itself with SelfRequest", async function () {
      const { ledger, company } = await loadFixture(deployLedger);
      await expect(request(ledger, company, company))
        .to.be.revertedWithCustomError(ledger, "SelfRequest")
        .withArgs(company.address);
    });
  });

  describe("approve", function () {
    it("activates the grant from the block's timestamp and emits AccessApproved", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      const at = (await time.latest()) + 5;
      await time.setNextBlockTimestamp(at);
      await expect(ledger.connect(owner).approve(id))
        .to.emit(ledger, "AccessApproved")
        .withArgs(id, owner.address, company.address, at);
      const r = await ledger.getRequest(id);
      expect(r.status).to.equal(Status.Active);
      expect(r.startsAt).to.equal(BigInt(at));
      expect(await ledger.isActive(id)).to.equal(true);
    });

    it("rejects an unknown id with UnknownRequest (THREATS row 12)", async function () {
      const { ledger, owner } = await loadFixture(pendingFixture);
      await expect(ledger.connect(owner).approve(0)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(0);
      await expect(ledger.connect(owner).approve(2)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(2);
    });

    it("rejects anyone but the owner with NotRequestOwner", async function () {
      const { ledger, company, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(company).approve(id))
        .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
        .withArgs(id, company.address);
    });

    it("rejects approving twice with RequestNotPending", async function () {
      const { ledger, owner, id } = await loadFixture(activeFixture);
      await expect(ledger.connect(owner).approve(id))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
    });

    it("rejects approving a denied or cancelled request with RequestNotPending", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      await ledger.connect(owner).deny(id);
      await expect(ledger.connect(owner).approve(id))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Denied);
      const id2 = await request(ledger, company, owner);
      await ledger.connect(company).cancel(id2);
      await expect(ledger.connect(owner).approve(id2))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id2, Status.Cancelled);
    });
  });

  describe("approveBySig", function () {
    it("accepts the owner's signTypedData approval relayed by anyone", async function () {
      const { ledger, owner, company, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 600;
      const signature = await signApproval(owner, ledger, id, deadline);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, signature))
        .to.emit(ledger, "AccessApproved")
        .withArgs(id, owner.address, company.address, (t) => t > 0n);
      expect((await ledger.getRequest(id)).status).to.equal(Status.Active);
    });

    it("hashes the approval exactly as ethers does", async function () {
      const { ledger, id } = await loadFixture(pendingFixture);
      const deadline = 1234n;
      const structHash = ethers.keccak256(
        ethers.AbiCoder.defaultAbiCoder().encode(
          ["bytes32", "uint256", "uint256"],
          [await ledger.APPROVAL_TYPEHASH(), id, deadline],
        ),
      );
      const digest = ethers.keccak256(ethers.concat(["0x1901", await ledger.domainSeparator(), structHash]));
      const expected = ethers.TypedDataEncoder.hash(
        await domainOf(ledger),
        { Approval: [{ name: "requestId", type: "uint256" }, { name: "deadline", type: "uint256" }] },
        { requestId: id, deadline },
      );
      expect(digest).to.equal(expected);
    });

    it("accepts a deadline equal to the block's timestamp", async function () {
      const { ledger, owner, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 30;
      const signature = await signApproval(owner, ledger, id, deadline);
      await time.setNextBlockTimestamp(deadline);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, signature)).to.emit(ledger, "AccessApproved");
    });

    it("rejects an approval after its deadline with ApprovalDeadlinePassed (THREATS row 13)", async function () {
      const { ledger, owner, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 30;
      const signature = await signApproval(owner, ledger, id, deadline);
      await time.setNextBlockTimestamp(deadline + 1);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, signature))
        .to.be.revertedWithCustomError(ledger, "ApprovalDeadlinePassed")
        .withArgs(deadline, deadline + 1);
    });

    it("rejects the same approval replayed with RequestNotPending (THREATS row 12)", async function () {
      const { ledger, owner, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 600;
      const signature = await signApproval(owner, ledger, id, deadline);
      await ledger.connect(relayer).approveBySig(id, deadline, signature);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, signature))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
    });

    it("rejects an approval signed for another chain id (THREATS row 12)", async function () {
      const { ledger, owner, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 600;
      const signature = await signApproval(owner, ledger, id, deadline, { chainId: 1n });
      await expect(ledger.connect(relayer).approveBySig(id, deadline, signature))
        .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
        .withArgs(id, owner.address);
    });

    it("rejects an approval signed for another ledger contract (THREATS row 12)", async function () {
      const { ledger, owner, company, relayer, id } = await loadFixture(pendingFixture);
      const other = await ethers.deployContract("ConsentLedger");
      await request(other, company, owner);
      const deadline = (await time.latest()) + 600;
      const forOther = await signApproval(owner, other, id, deadline);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, forOther))
        .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
        .withArgs(id, owner.address);
      // The same signature is good where it was meant to be used.
      await expect(other.connect(relayer).approveBySig(id, deadline, forOther)).to.emit(other, "AccessApproved");
    });

    it("rejects an approval for another request id, deadline or name", async function () {
      const { ledger, owner, company, relayer, id } = await loadFixture(pendingFixture);
      const id2 = await request(ledger, company, owner);
      const deadline = (await time.latest()) + 600;
      const forFirst = await signApproval(owner, ledger, id, deadline);
      await expect(ledger.connect(relayer).approveBySig(id2, deadline, forFirst))
        .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
        .withArgs(id2, owner.address);
      await expect(ledger.connect(relayer).approveBySig(id, deadline + 1, forFirst))
        .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
        .withArgs(id, owner.address);
      const wrongName = await signApproval(owner, ledger, id, deadline, { name: "EAS" });
      await expect(ledger.connect(relayer).approveBySig(id, deadline, wrongName))
        .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
        .withArgs(id, owner.address);
    });

    it("rejects an approval signed by someone other than the owner", async function () {
      const { ledger, owner, company, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 600;
      const byCompany = await signApproval(company, ledger, id, deadline);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, byCompany))
        .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
        .withArgs(id, owner.address);
    });

    it("rejects malleated (high-s), truncated and empty signatures (THREATS row 11)", async function () {
      const { ledger, owner, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 600;
      const signature = await signApproval(owner, ledger, id, deadline);
      for (const bad of [malleate(signature), ethers.dataSlice(signature, 0, 64), "0x"]) {
        await expect(ledger.connect(relayer).approveBySig(id, deadline, bad))
          .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
          .withArgs(id, owner.address);
      }
      await expect(ledger.connect(relayer).approveBySig(id, deadline, signature)).to.emit(ledger, "AccessApproved");
    });

    it("rejects an unknown id with UnknownRequest and a non-pending one with RequestNotPending", async function () {
      const { ledger, owner, relayer, id } = await loadFixture(pendingFixture);
      const deadline = (await time.latest()) + 600;
      const signature = await signApproval(owner, ledger, 9, deadline);
      await expect(ledger.connect(relayer).approveBySig(9, deadline, signature))
        .to.be.revertedWithCustomError(ledger, "UnknownRequest")
        .withArgs(9);
      await ledger.connect(owner).deny(id);
      const forDenied = await signApproval(owner, ledger, id, deadline);
      await expect(ledger.connect(relayer).approveBySig(id, deadline, forDenied))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Denied);
    });

    describe("with an ERC-1271 wallet as owner", function () {
      async function walletFixture() {
        const f = await deployLedger();
        const wallet = await ethers.deployContract("ERC1271WalletMock", [f.owner.address]);
        const id = await request(f.ledger, f.company, await wallet.getAddress());
        return { ...f, wallet, id };
      }

      it("accepts an approval the wallet's signer made", async function () {
        const { ledger, wallet, owner, company, relayer, id } = await loadFixture(walletFixture);
        const deadline = (await time.latest()) + 600;
        const signature = await signApproval(owner, ledger, id, deadline);
        await expect(ledger.connect(relayer).approveBySig(id, deadline, signature))
          .to.emit(ledger, "AccessApproved")
          .withArgs(id, await wallet.getAddress(), company.address, (t) => t > 0n);
      });

      it("re-verifies with the wallet at use: a signer that changed no longer approves (THREATS row 23)", async function () {
        const { ledger, wallet, owner, owner2, relayer, id } = await loadFixture(walletFixture);
        const deadline = (await time.latest()) + 600;
        const byOldSigner = await signApproval(owner, ledger, id, deadline);
        await wallet.connect(owner).setSigner(owner2.address);
        await expect(ledger.connect(relayer).approveBySig(id, deadline, byOldSigner))
          .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
          .withArgs(id, await wallet.getAddress());
        const byNewSigner = await signApproval(owner2, ledger, id, deadline);
        await expect(ledger.connect(relayer).approveBySig(id, deadline, byNewSigner)).to.emit(
          ledger,
          "AccessApproved",
        );
      });

      it("rejects an EOA signature claiming to be the wallet's own key", async function () {
        const { ledger, wallet, stranger, relayer, id } = await loadFixture(walletFixture);
        const deadline = (await time.latest()) + 600;
        const signature = await signApproval(stranger, ledger, id, deadline);
        await expect(ledger.connect(relayer).approveBySig(id, deadline, signature))
          .to.be.revertedWithCustomError(ledger, "InvalidApprovalSignature")
          .withArgs(id, await wallet.getAddress());
      });

      it("lets the wallet claim and withdraw its earnings", async function () {
        const { ledger, wallet, owner, relayer, id } = await loadFixture(walletFixture);
        const deadline = (await time.latest()) + 600;
        await ledger.connect(relayer).approveBySig(id, deadline, await signApproval(owner, ledger, id, deadline));
        await time.increase(DURATION);
        await wallet.connect(owner).execute(ledger, ledger.interface.encodeFunctionData("claim", [id]));
        await expect(
          wallet.connect(owner).execute(ledger, ledger.interface.encodeFunctionData("withdraw")),
        ).to.changeEtherBalances([wallet, ledger], [PRICE, -PRICE]);
      });
    });
  });

  describe("deny", function () {
    it("credits the full price back to the company and emits AccessDenied", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(owner).deny(id))
        .to.emit(ledger, "AccessDenied")
        .withArgs(id, owner.address, company.address);
      expect((await ledger.getRequest(id)).status).to.equal(Status.Denied);
      expect(await ledger.owed(company)).to.equal(PRICE);
      expect(await ledger.escrowHeld()).to.equal(0n);
      expect(await ledger.earned(id)).to.equal(0n);
      await expectConserved(ledger, [owner, company]);
    });

    it("rejects anyone but the owner with NotRequestOwner", async function () {
      const { ledger, company, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(company).deny(id))
        .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
        .withArgs(id, company.address);
    });

    it("rejects denying an active grant with RequestNotPending", async function () {
      const { ledger, owner, id } = await loadFixture(activeFixture);
      await expect(ledger.connect(owner).deny(id))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
    });

    it("rejects an unknown id with UnknownRequest", async function () {
      const { ledger, owner } = await loadFixture(pendingFixture);
      await expect(ledger.connect(owner).deny(5)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(5);
    });
  });

  describe("cancel", function () {
    it("credits the full price back to the company and emits RequestCancelled", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(company).cancel(id))
        .to.emit(ledger, "RequestCancelled")
        .withArgs(id, owner.address, company.address);
      expect((await ledger.getRequest(id)).status).to.equal(Status.Cancelled);
      expect(await ledger.owed(company)).to.equal(PRICE);
      expect(await ledger.escrowHeld()).to.equal(0n);
      await expectConserved(ledger, [owner, company]);
    });

    it("rejects anyone but the company with NotRequestCompany", async function () {
      const { ledger, owner, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(owner).cancel(id))
        .to.be.revertedWithCustomError(ledger, "NotRequestCompany")
        .withArgs(id, owner.address);
    });

    it("rejects cancelling an active grant with RequestNotPending", async function () {
      const { ledger, company, id } = await loadFixture(activeFixture);
      await expect(ledger.connect(company).cancel(id))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Active);
    });

    it("rejects cancelling twice with RequestNotPending", async function () {
      const { ledger, company, id } = await loadFixture(pendingFixture);
      await ledger.connect(company).cancel(id);
      await expect(ledger.connect(company).cancel(id))
        .to.be.revertedWithCustomError(ledger, "RequestNotPending")
        .withArgs(id, Status.Cancelled);
    });

    it("rejects an unknown id with UnknownRequest", async function () {
      const { ledger, company } = await loadFixture(pendingFixture);
      await expect(ledger.connect(company).cancel(3)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(3);
    });
  });

  describe("streaming and claim", function () {
    it("earns pro rata while active and caps at the price after expiry", async function () {
      const { ledger, id, startsAt } = await loadFixture(activeFixture);
      await time.increaseTo(startsAt + DURATION / 4);
      expect(await ledger.earned(id)).to.equal(PRICE / 4n);
      expect(await ledger.claimable(id)).to.equal(PRICE / 4n);
      await time.increaseTo(startsAt + DURATION * 3);
      expect(await ledger.earned(id)).to.equal(PRICE);
    });

    it("rounds earnings down", async function () {
      const { ledger, company, owner } = await loadFixture(deployLedger);
      const id = await request(ledger, company, owner, { value: 10n, duration: 3 });
      const startsAt = (await time.latest()) + 1;
      await time.setNextBlockTimestamp(startsAt);
      await ledger.connect(owner).approve(id);
      await time.increaseTo(startsAt + 1);
      expect(await ledger.earned(id)).to.equal(3n);
      await time.increaseTo(startsAt + 2);
      expect(await ledger.earned(id)).to.equal(6n);
      await time.increaseTo(startsAt + 3);
      expect(await ledger.earned(id)).to.equal(10n);
    });

    it("credits what was earned to the owner and emits EarningsClaimed", async function () {
      const { ledger, owner, company, id, startsAt } = await loadFixture(activeFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION / 2);
      await expect(ledger.connect(owner).claim(id))
        .to.emit(ledger, "EarningsClaimed")
        .withArgs(id, owner.address, PRICE / 2n);
      expect(await ledger.owed(owner)).to.equal(PRICE / 2n);
      expect(await ledger.escrowHeld()).to.equal(PRICE / 2n);
      expect((await ledger.getRequest(id)).claimed).to.equal(PRICE / 2n);
      expect(await ledger.claimable(id)).to.equal(0n);
      await expectConserved(ledger, [owner, company]);
    });

    it("lets the owner claim the rest after expiry, then nothing more", async function () {
      const { ledger, owner, company, id, startsAt } = await loadFixture(activeFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION / 3);
      await ledger.connect(owner).claim(id);
      await time.increaseTo(startsAt + DURATION + 100);
      expect(await ledger.isActive(id)).to.equal(false);
      await expect(ledger.connect(owner).claim(id))
        .to.emit(ledger, "EarningsClaimed")
        .withArgs(id, owner.address, PRICE - PRICE / 3n);
      expect(await ledger.owed(owner)).to.equal(PRICE);
      expect(await ledger.escrowHeld()).to.equal(0n);
      await expect(ledger.connect(owner).claim(id)).to.be.revertedWithCustomError(ledger, "NothingToClaim").withArgs(id);
      await expectConserved(ledger, [owner, company]);
    });

    it("rejects claiming a pending request with NothingToClaim", async function () {
      const { ledger, owner, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(owner).claim(id)).to.be.revertedWithCustomError(ledger, "NothingToClaim").withArgs(id);
    });

    it("credits a grant once when it is claimed twice in one block", async function () {
      const { ledger, owner, company, id } = await loadFixture(activeFixture);
      await time.increase(60);
      await network.provider.send("evm_setAutomine", [false]);
      let first, second;
      try {
        first = await ledger.connect(owner).claim(id, { gasLimit: 100000 });
        second = await ledger.connect(owner).claim(id, { gasLimit: 100000 });
        await network.provider.send("evm_mine");
      } finally {
        await network.provider.send("evm_setAutomine", [true]);
      }
      const [r1, r2] = await Promise.all([first.hash, second.hash].map((h) => ethers.provider.getTransactionReceipt(h)));
      expect(r1.blockNumber).to.equal(r2.blockNumber);
      expect(r1.status).to.equal(1);
      expect(r2.status).to.equal(0); // NothingToClaim
      expect(await ledger.owed(owner)).to.equal((await ledger.getRequest(id)).claimed);
      await expectConserved(ledger, [owner, company]);
    });

    it("rejects anyone but the owner with NotRequestOwner", async function () {
      const { ledger, company, id } = await loadFixture(activeFixture);
      await time.increase(60);
      await expect(ledger.connect(company).claim(id))
        .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
        .withArgs(id, company.address);
    });

    it("rejects an unknown id with UnknownRequest", async function () {
      const { ledger, owner } = await loadFixture(activeFixture);
      await expect(ledger.connect(owner).claim(77)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(77);
    });

    describe("claimMany", function () {
      async function twoGrantsFixture() {
        const f = await activeFixture();
        const id2 = await request(f.ledger, f.company2, f.owner, { value: PRICE * 2n });
        const starts2 = (await time.latest()) + 1;
        await time.setNextBlockTimestamp(starts2);
        await f.ledger.connect(f.owner).approve(id2);
        const id3 = await request(f.ledger, f.company3, f.owner); // stays pending
        return { ...f, id2, starts2, id3 };
      }

      it("claims several grants at once, skipping those with nothing to claim", async function () {
        const { ledger, owner, company, company2, company3, id, startsAt, id2, starts2, id3 } =
          await loadFixture(twoGrantsFixture);
        const now = starts2 + 100;
        await time.setNextBlockTimestamp(now);
        const expected1 = earnedAt(PRICE, startsAt, DURATION, now);
        const expected2 = earnedAt(PRICE * 2n, starts2, DURATION, now);
        await expect(ledger.connect(owner).claimMany([id, id2, id3]))
          .to.emit(ledger, "EarningsClaimed")
          .withArgs(id, owner.address, expected1)
          .and.to.emit(ledger, "EarningsClaimed")
          .withArgs(id2, owner.address, expected2);
        expect(await ledger.owed(owner)).to.equal(expected1 + expected2);
        expect(await ledger.escrowHeld()).to.equal(PRICE * 4n - expected1 - expected2);
        await expectConserved(ledger, [owner, company, company2, company3]);
      });

      it("returns the total it credited", async function () {
        const { ledger, owner, id, id2 } = await loadFixture(twoGrantsFixture);
        await time.increase(10);
        const total = await ledger.connect(owner).claimMany.staticCall([id, id2]);
        expect(total).to.equal((await ledger.claimable(id)) + (await ledger.claimable(id2)));
      });

      it("rejects a batch with nothing to claim, or an empty one, with NothingToClaim(0)", async function () {
        const { ledger, owner, id3 } = await loadFixture(twoGrantsFixture);
        await expect(ledger.connect(owner).claimMany([id3])).to.be.revertedWithCustomError(ledger, "NothingToClaim").withArgs(0);
        await expect(ledger.connect(owner).claimMany([])).to.be.revertedWithCustomError(ledger, "NothingToClaim").withArgs(0);
      });

      it("rejects a batch with someone else's grant with NotRequestOwner", async function () {
        const { ledger, owner2, company, id2 } = await loadFixture(twoGrantsFixture);
        const foreign = await request(ledger, company, owner2);
        await ledger.connect(owner2).approve(foreign);
        await time.increase(10);
        await expect(ledger.connect(owner2).claimMany([foreign, id2]))
          .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
          .withArgs(id2, owner2.address);
      });

      it("rejects a batch with an unknown id with UnknownRequest", async function () {
        const { ledger, owner, id } = await loadFixture(twoGrantsFixture);
        await expect(ledger.connect(owner).claimMany([id, 42]))
          .to.be.revertedWithCustomError(ledger, "UnknownRequest")
          .withArgs(42);
      });
    });
  });

  describe("revoke", function () {
    it("refunds the unearned part on revoke and keeps the earned part for the owner", async function () {
      const { ledger, owner, company, id, startsAt } = await loadFixture(activeFixture);
      const at = startsAt + DURATION / 4;
      await time.setNextBlockTimestamp(at);
      const ownerShare = PRICE / 4n;
      await expect(ledger.connect(owner).revoke(id))
        .to.emit(ledger, "AccessRevoked")
        .withArgs(id, owner.address, company.address, ownerShare, PRICE - ownerShare);
      expect(await ledger.owed(owner)).to.equal(ownerShare);
      expect(await ledger.owed(company)).to.equal(PRICE - ownerShare);
      expect(await ledger.escrowHeld()).to.equal(0n);
      const r = await ledger.getRequest(id);
      expect(r.status).to.equal(Status.Revoked);
      expect(r.claimed).to.equal(ownerShare);
      expect(await ledger.isActive(id)).to.equal(false);
      expect(await ledger.covers(id, SCOPES)).to.equal(false);
      await expectConserved(ledger, [owner, company]);
    });

    it("freezes earnings at revoke time", async function () {
      const { ledger, owner, id, startsAt } = await loadFixture(activeFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION / 2);
      await ledger.connect(owner).revoke(id);
      await time.increase(DURATION * 2);
      expect(await ledger.earned(id)).to.equal(PRICE / 2n);
      expect(await ledger.claimable(id)).to.equal(0n);
      await expect(ledger.connect(owner).claim(id)).to.be.revertedWithCustomError(ledger, "NothingToClaim").withArgs(id);
    });

    it("credits only the unclaimed part after an earlier claim", async function () {
      const { ledger, owner, company, id, startsAt } = await loadFixture(activeFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION / 4);
      await ledger.connect(owner).claim(id);
      await time.setNextBlockTimestamp(startsAt + DURATION / 2);
      await expect(ledger.connect(owner).revoke(id))
        .to.emit(ledger, "AccessRevoked")
        .withArgs(id, owner.address, company.address, PRICE / 2n, PRICE / 2n);
      expect(await ledger.owed(owner)).to.equal(PRICE / 2n);
      expect(await ledger.owed(company)).to.equal(PRICE / 2n);
      expect(await ledger.escrowHeld()).to.equal(0n);
      await expectConserved(ledger, [owner, company]);
    });

    it("refunds everything when revoked in the block it was approved", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      await network.provider.send("evm_setAutomine", [false]);
      try {
        await ledger.connect(owner).approve(id);
        await ledger.connect(owner).revoke(id, { gasLimit: 200000 });
        await network.provider.send("evm_mine");
      } finally {
        await network.provider.send("evm_setAutomine", [true]);
      }
      expect(await ledger.owed(company)).to.equal(PRICE);
      expect(await ledger.owed(owner)).to.equal(0n);
      expect((await ledger.getRequest(id)).status).to.equal(Status.Revoked);
    });

    it("rejects revoking a pending request with GrantNotActive", async function () {
      const { ledger, owner, id } = await loadFixture(pendingFixture);
      await expect(ledger.connect(owner).revoke(id))
        .to.be.revertedWithCustomError(ledger, "GrantNotActive")
        .withArgs(id, Status.Pending);
    });

    it("rejects revoking twice with GrantNotActive", async function () {
      const { ledger, owner, id } = await loadFixture(activeFixture);
      await ledger.connect(owner).revoke(id);
      await expect(ledger.connect(owner).revoke(id))
        .to.be.revertedWithCustomError(ledger, "GrantNotActive")
        .withArgs(id, Status.Revoked);
    });

    it("rejects revoking an expired grant with GrantExpired", async function () {
      const { ledger, owner, id, startsAt } = await loadFixture(activeFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION);
      await expect(ledger.connect(owner).revoke(id))
        .to.be.revertedWithCustomError(ledger, "GrantExpired")
        .withArgs(id, startsAt + DURATION);
    });

    it("allows revoking one second before expiry", async function () {
      const { ledger, owner, company, id, startsAt } = await loadFixture(activeFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION - 1);
      const ownerShare = earnedAt(PRICE, startsAt, DURATION, startsAt + DURATION - 1);
      await expect(ledger.connect(owner).revoke(id))
        .to.emit(ledger, "AccessRevoked")
        .withArgs(id, owner.address, company.address, ownerShare, PRICE - ownerShare);
    });

    it("rejects anyone but the owner with NotRequestOwner", async function () {
      const { ledger, company, id } = await loadFixture(activeFixture);
      await expect(ledger.connect(company).revoke(id))
        .to.be.revertedWithCustomError(ledger, "NotRequestOwner")
        .withArgs(id, company.address);
    });

    it("rejects an unknown id with UnknownRequest", async function () {
      const { ledger, owner } = await loadFixture(activeFixture);
      await expect(ledger.connect(owner).revoke(8)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(8);
    });
  });

  describe("withdraw", function () {
    it("sends the whole owed balance and emits Withdrawn", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      await ledger.connect(owner).deny(id);
      const tx = ledger.connect(company).withdraw();
      await expect(tx).to.emit(ledger, "Withdrawn").withArgs(company.address, PRICE);
      await expect(tx).to.changeEtherBalances([company, ledger], [PRICE, -PRICE]);
      expect(await ledger.owed(company)).to.equal(0n);
      await expectConserved(ledger, [owner, company]);
    });

    it("rejects withdrawing with nothing owed with NothingOwed", async function () {
      const { ledger, stranger } = await loadFixture(deployLedger);
      await expect(ledger.connect(stranger).withdraw())
        .to.be.revertedWithCustomError(ledger, "NothingOwed")
        .withArgs(stranger.address);
    });

    it("rejects withdrawing twice with NothingOwed", async function () {
      const { ledger, owner, company, id } = await loadFixture(pendingFixture);
      await ledger.connect(owner).deny(id);
      await ledger.connect(company).withdraw();
      await expect(ledger.connect(company).withdraw())
        .to.be.revertedWithCustomError(ledger, "NothingOwed")
        .withArgs(company.address);
    });

    it("keeps the balance owed when the transfer fails, with TransferFailed", async function () {
      const { ledger, owner } = await loadFixture(deployLedger);
      const attacker = await ethers.deployContract("ReentrancyAttacker", [await ledger.getAddress()]);
      await attacker.requestAccess(owner.address, SCOPES, DURATION, { value: PRICE });
      await attacker.cancel(1);
      await attacker.setMode(4, 0); // Reject
      await expect(attacker.withdraw())
        .to.be.revertedWithCustomError(ledger, "TransferFailed")
        .withArgs(await attacker.getAddress(), PRICE);
      expect(await ledger.owed(attacker)).to.equal(PRICE);
      await attacker.setMode(0, 0); // Accept
      await expect(attacker.withdraw()).to.changeEtherBalances([attacker, ledger], [PRICE, -PRICE]);
    });
  });

  describe("publishEndpoint", function () {
    it("emits EndpointPublished for the caller and stores nothing", async function () {
      const { ledger, owner } = await loadFixture(deployLedger);
      const terms = ethers.id("terms v1");
      await expect(ledger.connect(owner).publishEndpoint("https://vault.example/v1", terms))
        .to.emit(ledger, "EndpointPublished")
        .withArgs(owner.address, "https://vault.example/v1", terms);
      expect(await ledger.requestCount()).to.equal(0n);
    });
  });

  describe("describeCompany", function () {
    it("emits CompanyDescribed for the caller and stores nothing", async function () {
      const { ledger, company } = await loadFixture(deployLedger);
      await expect(ledger.connect(company).describeCompany("Acme Audio", "https://acme.example"))
        .to.emit(ledger, "CompanyDescribed")
        .withArgs(company.address, "Acme Audio", "https://acme.example");
      expect(await ledger.requestCount()).to.equal(0n);
    });

    it("takes a name of exactly 64 bytes (multi-byte UTF-8 counted in bytes) and no URL", async function () {
      const { ledger, company } = await loadFixture(deployLedger);
      const name = "é".repeat(32); // 2 bytes each
      expect(ethers.toUtf8Bytes(name).length).to.equal(64);
      await expect(ledger.connect(company).describeCompany(name, ""))
        .to.emit(ledger, "CompanyDescribed")
        .withArgs(company.address, name, "");
    });

    it("refuses an empty or too long name with InvalidCompanyName", async function () {
      const { ledger, company } = await loadFixture(deployLedger);
      await expect(ledger.connect(company).describeCompany("", "https://acme.example"))
        .to.be.revertedWithCustomError(ledger, "InvalidCompanyName")
        .withArgs(0, 64);
      await expect(ledger.connect(company).describeCompany("é".repeat(32) + "x", ""))
        .to.be.revertedWithCustomError(ledger, "InvalidCompanyName")
        .withArgs(65, 64);
    });

    it("refuses a URL longer than 256 bytes with CompanyUrlTooLong", async function () {
      const { ledger, company } = await loadFixture(deployLedger);
      const url = "https://acme.example/" + "a".repeat(256 - 21);
      await expect(ledger.connect(company).describeCompany("Acme", url)).to.emit(ledger, "CompanyDescribed");
      await expect(ledger.connect(company).describeCompany("Acme", url + "a"))
        .to.be.revertedWithCustomError(ledger, "CompanyUrlTooLong")
        .withArgs(257, 256);
    });
  });

  describe("views", function () {
    it("getRequest rejects an unknown id with UnknownRequest", async function () {
      const { ledger } = await loadFixture(pendingFixture);
      await expect(ledger.getRequest(0)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(0);
      await expect(ledger.getRequest(2)).to.be.revertedWithCustomError(ledger, "UnknownRequest").withArgs(2);
    });

    it("answers false and zero for unknown ids", async function () {
      const { ledger } = await loadFixture(deployLedger);
      expect(await ledger.isActive(1)).to.equal(false);
      expect(await ledger.covers(1, 1)).to.equal(false);
      expect(await ledger.earned(1)).to.equal(0n);
      expect(await ledger.claimable(1)).to.equal(0n);
    });

    it("isActive is true until the last second and false from startsAt + duration (THREATS row 14)", async function () {
      const { ledger, id, startsAt } = await loadFixture(activeFixture);
      await time.increaseTo(startsAt + DURATION - 1);
      expect(await ledger.isActive(id)).to.equal(true);
      await time.increaseTo(startsAt + DURATION);
      expect(await ledger.isActive(id)).to.equal(false);
      expect(await ledger.covers(id, SCOPES)).to.equal(false);
      expect((await ledger.getRequest(id)).status).to.equal(Status.Active); // expiry is derived
    });

    it("covers only non-empty subsets of the granted scopes (THREATS row 16)", async function () {
      const { ledger, id } = await loadFixture(activeFixture);
      expect(await ledger.covers(id, SCOPES)).to.equal(true);
      expect(await ledger.covers(id, 0b0001n)).to.equal(true);
      expect(await ledger.covers(id, 0b1010n)).to.equal(true);
      expect(await ledger.covers(id, 0b0100n)).to.equal(false);
      expect(await ledger.covers(id, SCOPES | (1n << 63n))).to.equal(false);
      expect(await ledger.covers(id, 0n)).to.equal(false);
    });

    it("covers nothing while pending", async function () {
      const { ledger, id } = await loadFixture(pendingFixture);
      expect(await ledger.isActive(id)).to.equal(false);
      expect(await ledger.covers(id, 1n)).to.equal(false);
    });
  });

  describe("reentrancy (THREATS row 21)", function () {
    /** The attacker owns grant 1 (from `company`) and has claimed half of it. */
    async function attackerOwnerFixture() {
      const f = await deployLedger();
      const attacker = await ethers.deployContract("ReentrancyAttacker", [await f.ledger.getAddress()]);
      const id = await request(f.ledger, f.company, await attacker.getAddress());
      const startsAt = (await time.latest()) + 1;
      await time.setNextBlockTimestamp(startsAt);
      await attacker.approve(id);
      await time.setNextBlockTimestamp(startsAt + DURATION / 2);
      await attacker.claim(id);
      return { ...f, attacker, id, startsAt };
    }

    it("re-entering withdraw finds nothing owed", async function () {
      const { ledger, attacker, company } = await loadFixture(attackerOwnerFixture);
      await attacker.setMode(1, 0); // Withdraw
      await expect(attacker.withdraw()).to.changeEtherBalances([attacker, ledger], [PRICE / 2n, -PRICE / 2n]);
      expect(await attacker.reentries()).to.equal(1n);
      expect(await attacker.reentrantSuccesses()).to.equal(0n);
      const expected = ledger.interface.encodeErrorResult("NothingOwed", [await attacker.getAddress()]);
      expect(await attacker.lastError()).to.equal(expected);
      await expectConserved(ledger, [attacker, company]);
    });

    it("re-entering claim on a fully claimed grant gains nothing", async function () {
      const { ledger, attacker, company, id, startsAt } = await loadFixture(attackerOwnerFixture);
      await time.setNextBlockTimestamp(startsAt + DURATION);
      await attacker.claim(id);
      await attacker.setMode(2, id); // Claim
      await expect(attacker.withdraw()).to.changeEtherBalances([attacker, ledger], [PRICE, -PRICE]);
      expect(await attacker.reentries()).to.equal(1n);
      expect(await attacker.reentrantSuccesses()).to.equal(0n);
      expect(await attacker.lastError()).to.equal(ledger.interface.encodeErrorResult("NothingToClaim", [id]));
      expect(await ledger.owed(attacker)).to.equal(0n);
      await expectConserved(ledger, [attacker, company]);
    });

    it("re-entering revoke settles once, and the total paid out is exactly the price", async function () {
      const { ledger, attacker, company, id, startsAt } = await loadFixture(attackerOwnerFixture);
      await attacker.setMode(3, id); // Revoke
      const revokeAt = startsAt + (DURATION * 3) / 4;
      await time.setNextBlockTimestamp(revokeAt);
      await expect(attacker.withdraw()).to.changeEtherBalances([attacker, ledger], [PRICE / 2n, -PRICE / 2n]);
      // The re-entrant revoke is a legitimate revoke: it credits the quarter earned since the claim.
      expect(await attacker.reentrantSuccesses()).to.equal(1n);
      expect(await ledger.owed(attacker)).to.equal(PRICE / 4n);
      expect(await ledger.owed(company)).to.equal(PRICE / 4n);
      await expectConserved(ledger, [attacker, company]);
      // A second withdraw re-enters revoke again, which now fails: the grant is revoked.
      await expect(attacker.withdraw()).to.changeEtherBalances([attacker, ledger], [PRICE / 4n, -PRICE / 4n]);
      expect(await attacker.reentrantSuccesses()).to.equal(1n);
      expect(await attacker.lastError()).to.equal(
        ledger.interface.encodeErrorResult("GrantNotActive", [id, Status.Revoked]),
      );
      await ledger.connect(company).withdraw();
      expect(await ethers.provider.getBalance(await ledger.getAddress())).to.equal(0n);
      expect(await ledger.escrowHeld()).to.equal(0n);
    });

    it("a company re-entering withdraw after a refund gets the refund once", async function () {
      const { ledger, owner } = await loadFixture(deployLedger);
      const attacker = await ethers.deployContract("ReentrancyAttacker", [await ledger.getAddress()]);
      await attacker.requestAccess(owner.address, SCOPES, DURATION, { value: PRICE });
      await attacker.requestAccess(owner.address, SCOPES, DURATION, { value: PRICE });
      await ledger.connect(owner).deny(1);
      await attacker.setMode(1, 0); // Withdraw
      await expect(attacker.withdraw()).to.changeEtherBalances([attacker, ledger], [PRICE, -PRICE]);
      expect(await attacker.reentrantSuccesses()).to.equal(0n);
      expect(await ledger.escrowHeld()).to.equal(PRICE);
      await expectConserved(ledger, [attacker, owner]);
    });
  });
});
