// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IConsentLedger} from "../IConsentLedger.sol";

/**
 * @title ReentrancyAttacker
 * @notice Test-only account that acts as an owner or a company on the ledger and, when the
 * ledger sends it ether, calls back into `withdraw`, `claim` or `revoke` (THREATS row 21).
 * It records every re-entry and how it ended, so a test can show it gained nothing extra.
 * In `Reject` mode it refuses ether, to exercise the ledger's failed-transfer path.
 */
contract ReentrancyAttacker {
    /// @notice What the attacker does when it receives ether.
    enum Mode {
        Accept,
        Withdraw,
        Claim,
        Revoke,
        Reject
    }

    /// @notice The ledger under attack.
    IConsentLedger public immutable ledger;
    /// @notice The current behaviour on receiving ether.
    Mode public mode;
    /// @notice The grant that `Claim` and `Revoke` re-enter with.
    uint256 public targetId;
    /// @notice How many times the ledger's transfer re-entered the attacker.
    uint256 public reentries;
    /// @notice How many re-entrant calls returned without reverting.
    uint256 public reentrantSuccesses;
    /// @notice Revert data of the last re-entrant call that failed.
    bytes public lastError;

    /// @notice Refusing ether in `Reject` mode.
    error Rejected();

    constructor(IConsentLedger ledger_) {
        ledger = ledger_;
    }

    /// @notice Choose what to do on the next receipt of ether.
    function setMode(Mode mode_, uint256 targetId_) external {
        mode = mode_;
        targetId = targetId_;
    }

    /// @notice Request access as a company, paying `msg.value`.
    function requestAccess(address owner, uint64 scopes, uint32 duration) external payable returns (uint256) {
        return ledger.requestAccess{value: msg.value}(owner, scopes, duration, 0, bytes32(0), "attack");
    }

    /// @notice Approve as the owner.
    function approve(uint256 id) external {
        ledger.approve(id);
    }

    /// @notice Claim as the owner.
    function claim(uint256 id) external returns (uint256) {
        return ledger.claim(id);
    }

    /// @notice Revoke as the owner.
    function revoke(uint256 id) external {
        ledger.revoke(id);
    }

    /// @notice Cancel as the company.
    function cancel(uint256 id) external {
        ledger.cancel(id);
    }

    /// @notice Withdraw the owed balance (and trigger the attack in {receive}).
    function withdraw() external {
        ledger.withdraw();
    }

    /// @notice Re-enters the ledger according to `mode`.
    receive() external payable {
        Mode current = mode;
        if (current == Mode.Reject) revert Rejected();
        if (current == Mode.Accept) return;
        ++reentries;
        if (current == Mode.Withdraw) {
            try ledger.withdraw() {
                ++reentrantSuccesses;
            } catch (bytes memory reason) {
                lastError = reason;
            }
        } else if (current == Mode.Claim) {
            try ledger.claim(targetId) returns (uint256) {
                ++reentrantSuccesses;
            } catch (bytes memory reason) {
                lastError = reason;
            }
        } else {
            try ledger.revoke(targetId) {
                ++reentrantSuccesses;
            } catch (bytes memory reason) {
                lastError = reason;
            }
        }
    }
}
