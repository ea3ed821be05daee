// EIP-712 cross-check between vault/ledger.py and ethers 6 (run by tests/test_ledger.py).
//
// Reads one JSON job from stdin and prints one JSON result:
//   {"op": "hash",   "domain", "types", "primaryType", "message"}            -> {"digest"}
//   {"op": "sign",   ... , "privateKey"}                                      -> {"signature", "address"}
//   {"op": "verify", ... , "signature"}                                       -> {"signer"} or {"error"}
// "types" excludes EIP712Domain (ethers derives it from the domain). Numbers travel as
// decimal strings so nothing is rounded through JavaScript doubles.
"use strict";

const { TypedDataEncoder, Wallet, verifyTypedData } = require("ethers");

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (text += chunk));
    process.stdin.on("end", () => resolve(text));
    process.stdin.on("error", reject);
  });
}

async function main() {
  const job = JSON.parse(await readStdin());
  const types = { [job.primaryType]: job.types[job.primaryType] };
  let result;
  if (job.op === "hash") {
    result = { digest: TypedDataEncoder.hash(job.domain, types, job.message) };
  } else if (job.op === "sign") {
    const wallet = new Wallet(job.privateKey);
    result = { signature: await wallet.signTypedData(job.domain, types, job.message), address: wallet.address };
  } else if (job.op === "verify") {
    try {
      result = { signer: verifyTypedData(job.domain, types, job.message, job.signature) };
    } catch (error) {
      result = { error: String(error.shortMessage || error.message) };
    }
  } else {
    throw new Error(`unknown op ${job.op}`);
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
