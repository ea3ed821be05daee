// Shared fixture and helpers for the ConsentLedger tests (no tests in this file).
"use strict";

const { ethers } = require("hardhat");

const Status = Object.freeze({ None: 0n, Pending: 1n, Active: 2n, Denied: 3n, Cancelled: 4n, Revoked: 5n });

const APPROVAL_TYPES = {
  Approval: [
    { name: "requestId", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

const CATALOG_HASH = ethers.id("vault scope catalog v1");
const PURPOSE = "music recommendations";
const PRICE = ethers.parseEther("0.36");
const DURATION = 3600; // PRICE / DURATION = 1e14 wei per second: pro-rata amounts are exact.
const SCOPES = 0b1011n;

/** The deployed ledger plus named accounts: owners, companies and a relayer. */
async function deployLedger() {
  const [deployer, owner, owner2, owner3, company, company2, company3, relayer, stranger] =
    await ethers.getSigners();
  const ledger = await ethers.deployContract("ConsentLedger");
  await ledger.waitForDeployment();
  return { ledger, deployer, owner, owner2, owner3, company, company2, company3, relayer, stranger };
}

/** Sends requestAccess from `company` and returns the new id. */
async function request(ledger, company, owner, overrides = {}) {
  const o = {
    scopes: SCOPES,
    duration: DURATION,
    maxReleases: 0,
    catalogHash: CATALOG_HASH,
    purpose: PURPOSE,
    value: PRICE,
    ...overrides,
  };
  const ownerAddress = typeof owner === "string" ? owner : await owner.getAddress();
  const tx = await ledger
    .connect(company)
    .requestAccess(ownerAddress, o.scopes, o.duration, o.maxReleases, o.catalogHash, o.purpose, { value: o.value });
  await tx.wait();
  return ledger.requestCount();
}

/** Sends requestGroupAccess from `company` for `owners` and returns the new id. */
async function requestGroup(ledger, company, owners, overrides = {}) {
  const o = {
    scopes: SCOPES,
    duration: DURATION,
    maxReleases: 0,
    catalogHash: CATALOG_HASH,
    purpose: PURPOSE,
    value: PRICE,
    ...overrides,
  };
  const addresses = await Promise.all(owners.map((x) => (typeof x === "string" ? x : x.getAddress())));
  const tx = await ledger
    .connect(company)
    .requestGroupAccess(addresses, o.scopes, o.duration, o.maxReleases, o.catalogHash, o.purpose, { value: o.value });
  await tx.wait();
  return ledger.requestCount();
}

/** Each owner's share of `price` among `count` owners: equal parts, the remainder to the first. */
function sharesOf(price, count) {
  const base = BigInt(price) / BigInt(count);
  return Array.from({ length: count }, (_, i) => (i === 0 ? base + (BigInt(price) % BigInt(count)) : base));
}

/** The ledger's EIP-712 domain, optionally with a different chain id or contract. */
async function domainOf(ledger, overrides = {}) {
  const { chainId } = await ethers.provider.getNetwork();
  return {
    name: "ConsentLedger",
    version: "1",
    chainId,
    verifyingContract: await ledger.getAddress(),
    ...overrides,
  };
}

/** `signer`'s EIP-712 Approval signature for request `id`. */
async function signApproval(signer, ledger, id, deadline, domainOverrides = {}) {
  const domain = await domainOf(ledger, domainOverrides);
  return signer.signTypedData(domain, APPROVAL_TYPES, { requestId: id, deadline });
}

/** Turns a low-s signature into its high-s twin (same signer under plain ecrecover). */
function malleate(signature) {
  const sig = ethers.Signature.from(signature);
  const n = BigInt("0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141");
  const highS = ethers.toBeHex(n - BigInt(sig.s), 32);
  const v = sig.v === 27 ? 28 : 27;
  return ethers.concat([sig.r, highS, ethers.toBeHex(v, 1)]);
}

/** price * min(elapsed, duration) / duration, as the contract computes it. */
function earnedAt(price, startsAt, duration, now) {
  let elapsed = BigInt(now) - BigInt(startsAt);
  if (elapsed > BigInt(duration)) elapsed = BigInt(duration);
  return (BigInt(price) * elapsed) / BigInt(duration);
}

module.exports = {
  Status,
  APPROVAL_TYPES,
  CATALOG_HASH,
  PURPOSE,
  PRICE,
  DURATION,
  SCOPES,
  deployLedger,
  request,
  requestGroup,
  sharesOf,
  domainOf,
  signApproval,
  malleate,
  earnedAt,
};
