// Compiles the contracts and writes vault/artifacts/ConsentLedger.json, the ABI and bytecode
// the Python side deploys and calls. tests/test_artifacts.py fails when the committed file
// differs from a fresh compile, so rerun this after every change under contracts/.
//
// Usage: node scripts/export_artifact.js   (or: npx hardhat run scripts/export_artifact.js)
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const hre = require("hardhat");

const CONTRACT = "ConsentLedger";
const OUTPUT = path.join(__dirname, "..", "vault", "artifacts", `${CONTRACT}.json`);

async function main() {
  await hre.run("compile", { quiet: true });
  const artifact = await hre.artifacts.readArtifact(CONTRACT);
  const buildInfo = await hre.artifacts.getBuildInfo(`${artifact.sourceName}:${CONTRACT}`);
  const exported = {
    contractName: artifact.contractName,
    abi: artifact.abi,
    bytecode: artifact.bytecode,
    deployedBytecode: artifact.deployedBytecode,
    solcVersion: buildInfo.solcLongVersion,
  };
  fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
  fs.writeFileSync(OUTPUT, JSON.stringify(exported, null, 2) + "\n");
  console.log(`wrote ${path.relative(process.cwd(), OUTPUT)} (${(artifact.deployedBytecode.length - 2) / 2} bytes deployed)`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
