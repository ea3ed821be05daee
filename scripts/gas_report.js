// Gas per ConsentLedger operation on Hardhat's in-process chain, first-time and warm.
//
// "first" = the first such call on a fresh ledger (owed balances and counters still zero, so
// storage goes from zero to non-zero); "warm" = the same call once the accounts' owed balances
// and the ledger's counters are already non-zero, which is the steady state the targets refer
// to. Prints a Markdown table (with the EAS figures for comparison) and exits with status 1
// when a warm figure misses its target.
//
// Usage: node scripts/gas_report.js   (or: npx hardhat run scripts/gas_report.js)
"use strict";

const hre = require("hardhat");

const { ethers } = hre;

const TARGETS = {
  requestAccess: 100000n,
  "requestGroupAccess, 2 owners": 160000n,
  "approve (group, not last), 2 owners": 50000n,
  "approve (group, last), 2 owners": 50000n,
  "approveBySig (group, first owner), 2 owners": 50000n,
  "approveBySig (group, last owner), 2 owners": 50000n,
  approve: 40000n,
  approveBySig: 60000n,
  revoke: 60000n,
  claim: 45000n,
  withdraw: 35000n,
};
// Ethereum Attestation Service, measured on py-evm (docs/ledger.md).
const EAS = { requestAccess: "attest ~200,000", approveBySig: "attestByDelegation ~330,000", revoke: "revoke ~75,000" };

const PURPOSE = "music recommendations";
const CATALOG_HASH = ethers.id("vault scope catalog v1");
const PRICE = ethers.parseEther("0.36");
const DURATION = 3600;
const APPROVAL_TYPES = {
  Approval: [
    { name: "requestId", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

async function gasOf(txPromise) {
  const receipt = await (await txPromise).wait();
  return receipt.gasUsed;
}

async function main() {
  await hre.run("compile", { quiet: true });
  const [company, owner, company2, company3, relayer, walletKey] = await ethers.getSigners();
  const ledger = await ethers.deployContract("ConsentLedger");
  await ledger.waitForDeployment();
  const { chainId } = await ethers.provider.getNetwork();
  const domain = { name: "ConsentLedger", version: "1", chainId, verifyingContract: await ledger.getAddress() };

  let nextId = 1n;
  const requestFrom = async (from, to, purpose = PURPOSE) => {
    const gas = await gasOf(
      ledger.connect(from).requestAccess(to, 0b1011n, DURATION, 0, CATALOG_HASH, purpose, { value: PRICE }),
    );
    return { id: nextId++, gas };
  };
  const advance = (seconds) => hre.network.provider.send("evm_increaseTime", [seconds]);
  const signFor = async (signer, id) => {
    const deadline = BigInt((await ethers.provider.getBlock("latest")).timestamp + 3600);
    return { deadline, signature: await signer.signTypedData(domain, APPROVAL_TYPES, { requestId: id, deadline }) };
  };

  const rows = {};
  const record = (op, phase, gas) => {
    rows[op] = rows[op] || {};
    rows[op][phase] = gas;
  };

  // First-time costs, on the fresh ledger.
  const a = await requestFrom(company, owner);
  record("requestAccess", "first", a.gas);
  record("approve", "first", await gasOf(ledger.connect(owner).approve(a.id)));
  const b = await requestFrom(company, owner);
  const sigB = await signFor(owner, b.id);
  record("approveBySig", "first", await gasOf(ledger.connect(relayer).approveBySig(b.id, sigB.deadline, sigB.signature)));
  await advance(600);
  record("claim", "first", await gasOf(ledger.connect(owner).claim(a.id)));
  // Revoke b: the owner already has an owed balance from the claim; the company does not.
  await advance(600);
  record("revoke", "first", await gasOf(ledger.connect(owner).revoke(b.id)));
  const c = await requestFrom(company2, owner);
  record("deny", "first", await gasOf(ledger.connect(owner).deny(c.id)));
  const d = await requestFrom(company3, owner);
  record("cancel", "first", await gasOf(ledger.connect(company3).cancel(d.id)));
  record("withdraw", "first", await gasOf(ledger.connect(company2).withdraw()));
  record("publishEndpoint", "first", await gasOf(ledger.connect(owner).publishEndpoint("https://vault.example/v1", CATALOG_HASH)));

  // Warm costs: owed balances and counters are non-zero from here on.
  const e = await requestFrom(company, owner);
  record("requestAccess", "warm", e.gas);
  record("approve", "warm", await gasOf(ledger.connect(owner).approve(e.id)));
  const f = await requestFrom(company, owner);
  const sigF = await signFor(owner, f.id);
  record("approveBySig", "warm", await gasOf(ledger.connect(relayer).approveBySig(f.id, sigF.deadline, sigF.signature)));
  await advance(600);
  record("claim", "warm", await gasOf(ledger.connect(owner).claim(e.id)));
  record("revoke", "warm", await gasOf(ledger.connect(owner).revoke(f.id)));
  const g = await requestFrom(company, owner);
  record("deny", "warm", await gasOf(ledger.connect(owner).deny(g.id)));
  const h = await requestFrom(company, owner);
  record("cancel", "warm", await gasOf(ledger.connect(company).cancel(h.id)));
  record("withdraw", "warm", await gasOf(ledger.connect(company).withdraw()));
  record("publishEndpoint", "warm", await gasOf(ledger.connect(owner).publishEndpoint("https://vault.example/v1", CATALOG_HASH)));

  // Variants worth knowing.
  const long = await requestFrom(company, owner, "x".repeat(100));
  record("requestAccess, 100-byte purpose", "warm", long.gas);
  const batch = [];
  for (let i = 0; i < 5; i++) {
    const r = await requestFrom(company, owner);
    await ledger.connect(owner).approve(r.id);
    batch.push(r.id);
  }
  await advance(600);
  record("claimMany, 5 grants", "warm", await gasOf(ledger.connect(owner).claimMany(batch)));
  const wallet = await ethers.deployContract("ERC1271WalletMock", [walletKey.address]);
  const w = await requestFrom(company, await wallet.getAddress());
  const sigW = await signFor(walletKey, w.id);
  record("approveBySig, ERC-1271 wallet", "warm", await gasOf(ledger.connect(relayer).approveBySig(w.id, sigW.deadline, sigW.signature)));

  // Group requests (issue 18): 2 and 6 owners, warm (every owner has an owed balance).
  const groupOwners = (await ethers.getSigners()).slice(10, 16);
  for (const o of groupOwners) {
    const r = await requestFrom(company, o);
    await ledger.connect(o).deny(r.id); // warms the company's owed balance, not the owner's
    const s = await requestFrom(company, o);
    await ledger.connect(o).approve(s.id);
    await advance(60);
    await ledger.connect(o).claim(s.id);
  }
  const requestGroup = async (owners) => {
    const gas = await gasOf(
      ledger.connect(company).requestGroupAccess(owners, 0b1011n, DURATION, 0, CATALOG_HASH, PURPOSE, { value: PRICE + 1n }),
    );
    return { id: nextId++, gas };
  };
  for (const size of [2, 6]) {
    const owners = groupOwners.slice(0, size);
    const label = `${size} owners`;
    const g = await requestGroup(owners);
    record(`requestGroupAccess, ${label}`, "warm", g.gas);
    record(`approve (group, not last), ${label}`, "warm", await gasOf(ledger.connect(owners[0]).approve(g.id)));
    for (const o of owners.slice(1, -1)) await ledger.connect(o).approve(g.id);
    record(`approve (group, last), ${label}`, "warm", await gasOf(ledger.connect(owners[size - 1]).approve(g.id)));
    await advance(600);
    record(`claim (group owner), ${label}`, "warm", await gasOf(ledger.connect(owners[size - 1]).claim(g.id)));
    record(`revoke (group), ${label}`, "warm", await gasOf(ledger.connect(owners[0]).revoke(g.id)));
    const h = await requestGroup(owners);
    const sigH = await signFor(owners[0], h.id);
    record(`approveBySig (group, first owner), ${label}`, "warm", await gasOf(ledger.connect(relayer).approveBySig(h.id, sigH.deadline, sigH.signature)));
    for (const o of owners.slice(1, -1)) await ledger.connect(o).approve(h.id);
    const sigLast = await signFor(owners[size - 1], h.id);
    record(`approveBySig (group, last owner), ${label}`, "warm", await gasOf(ledger.connect(relayer).approveBySig(h.id, sigLast.deadline, sigLast.signature)));
    const d = await requestGroup(owners);
    record(`deny (group), ${label}`, "warm", await gasOf(ledger.connect(owners[size - 1]).deny(d.id)));
  }

  const fmt = (n) => (n === undefined ? "" : Number(n).toLocaleString("en-US"));
  const lines = [
    "| operation | first time | warm | target | EAS |",
    "|---|---:|---:|---:|---|",
  ];
  let missed = 0;
  for (const [op, { first, warm }] of Object.entries(rows)) {
    const target = TARGETS[op];
    let mark = "";
    if (target !== undefined) {
      const ok = warm <= target;
      if (!ok) missed++;
      mark = `${fmt(target)} ${ok ? "ok" : "MISSED"}`;
    }
    lines.push(`| ${op} | ${fmt(first)} | ${fmt(warm)} | ${mark} | ${EAS[op] || ""} |`);
  }
  console.log(lines.join("\n"));
  console.log(`\npurpose "${PURPOSE}" (${PURPOSE.length} bytes); solc ${hre.config.solidity.compilers[0].version}, ` +
    `optimizer runs ${hre.config.solidity.compilers[0].settings.optimizer.runs}, viaIR ${Boolean(hre.config.solidity.compilers[0].settings.viaIR)}`);
  if (missed > 0) {
    console.error(`${missed} operation(s) missed the gas target`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
