"""The Ethereum edge: everything that speaks to the consent ledger and its chains.

``secp256k1`` (coincurve: sign, recover), ``eip712`` (the domain, the typed messages, their
digests and signatures; no web3), ``units`` (ether for people), ``abi`` (the artifact,
event and revert decoding), ``ledger`` (the web3 client, node calls, deployment),
``chain`` (embedded py-evm, a JSON-RPC node, the managed anvil devnet), ``index`` (the local
grant index) and ``sync`` (the poller that fills it and confirms grants with contract reads).

Importing this package loads nothing: the daemon's signing process and hot path import
``secp256k1`` and ``eip712`` alone, without web3.
"""
