// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title ERC1271WalletMock
 * @notice Test-only contract wallet: accepts a hash as signed when its current `signer` key
 * signed it. The signer can hand the wallet to a new key, which makes every signature of the
 * old key invalid from then on (THREATS row 23).
 */
contract ERC1271WalletMock is IERC1271 {
    /// @notice The key whose signatures the wallet currently accepts.
    address public signer;

    /// @notice Only the current signer may do this.
    error NotSigner(address caller);
    /// @notice A call made through {execute} reverted; its revert data is passed on.
    error CallFailed(bytes returnData);

    constructor(address signer_) {
        signer = signer_;
    }

    /// @notice Let the wallet receive withdrawn earnings.
    receive() external payable {}

    /// @notice Hand the wallet to `newSigner`.
    function setSigner(address newSigner) external {
        if (msg.sender != signer) revert NotSigner(msg.sender);
        signer = newSigner;
    }

    /// @notice Call `target` as the wallet (to approve, claim, withdraw...).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != signer) revert NotSigner(msg.sender);
        (bool ok, bytes memory returnData) = target.call(data);
        if (!ok) revert CallFailed(returnData);
        return returnData;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }
}
