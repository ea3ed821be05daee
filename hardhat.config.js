// Hardhat 2 project for the ConsentLedger. Compiles offline with the npm package `solc`
// (solc-js): the machine cannot reach Hardhat's compiler download server, so the subtask
// that finds a compiler build is overridden to hand Hardhat the local soljson.js.
"use strict";

const path = require("node:path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

require("@nomicfoundation/hardhat-chai-matchers");
require("@nomicfoundation/hardhat-ethers");

// The telemetry question would block non-interactive runs (make test, CI, pytest).
process.env.HARDHAT_DISABLE_TELEMETRY_PROMPT = "true";

const SOLC_VERSION = require("solc/package.json").version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) {
    return runSuper();
  }
  const solc = require("solc");
  // solc.version() is "0.8.28+commit.7893614a.Emscripten.clang"; Hardhat's long version
  // (recorded in build-info) is the part before the platform suffix.
  const longVersion = solc.version().split(".Emscripten")[0];
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: SOLC_VERSION,
    longVersion,
  };
});

// VAULT_HARDHAT_BUILD_DIR sends artifacts and cache elsewhere, so the drift test
// (tests/test_artifacts.py) compiles into a temporary folder without touching ./artifacts.
const buildDir = process.env.VAULT_HARDHAT_BUILD_DIR;

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      optimizer: { enabled: true, runs: 10000 },
      evmVersion: "cancun",
      // The IR pipeline packs the struct writes and counters more tightly (about 600 gas less per
      // requestAccess than the legacy pipeline, measured with scripts/gas_report.js).
      viaIR: true,
    },
  },
  paths: {
    sources: "./contracts",
    tests: "./tests/contracts",
    artifacts: buildDir ? path.join(buildDir, "artifacts") : "./artifacts",
    cache: buildDir ? path.join(buildDir, "cache") : "./cache",
  },
  mocha: {
    timeout: 120000,
  },
};
