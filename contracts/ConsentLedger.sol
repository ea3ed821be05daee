// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IConsentLedger} from "./IConsentLedger.sol";

/**
 * @title ConsentLedger
 * @notice Escrowed, time-limited, revocable consent between companies and vault owners.
 * @dev Reentrancy: the only external calls are `withdraw`'s value transfer, made after the
 * caller's balance is zeroed, and `approveBySig`'s static call to an ERC-1271 wallet, which
 * cannot change state. `claim` and `revoke` make no external call at all. So no
 * ReentrancyGuard: it would cost every operation two extra storage writes and protect nothing.
 */
contract ConsentLedger is IConsentLedger, EIP712 {
    /// @inheritdoc IConsentLedger
    bytes32 public constant APPROVAL_TYPEHASH = keccak256("Approval(uint256 requestId,uint256 deadline)");

    mapping(uint256 id => Request) private _requests;
    mapping(address account => uint256) private _owed;

    // Bits 0..63 count the requests, bits 64..255 hold the wei in escrow: one slot, so that
    // requestAccess updates both with one storage write. Neither field can overflow into the
    // other: 2^64 requests cannot be made, and all the ether in existence is below 2^88 wei.
    uint256 private _totals;
    uint256 private constant _ESCROW_SHIFT = 64;

    constructor() EIP712("ConsentLedger", "1") {}

    // ---------------------------------------------------------------- transitions

    /// @inheritdoc IConsentLedger
    function requestAccess(
        address owner,
        uint64 scopes,
        uint32 duration,
        uint32 maxReleases,
        bytes32 catalogHash,
        string calldata purpose
    ) external payable returns (uint256 id) {
        if (msg.value == 0) revert ZeroPrice();
        if (msg.value > type(uint96).max) revert PriceTooLarge(msg.value);
        if (duration == 0) revert ZeroDuration();
        if (scopes == 0) revert EmptyScopes();
        if (owner == address(0)) revert InvalidOwner(owner);
        if (owner == msg.sender) revert SelfRequest(owner);

        uint96 price = uint96(msg.value);
        uint256 totals = _totals;
        unchecked {
            // Bounded by the comment on _totals.
            id = uint64(totals) + 1;
            _totals = totals + 1 + (uint256(price) << _ESCROW_SHIFT);
        }
        _storeNew({
            id: id,
            company: msg.sender,
            scopes: scopes,
            maxReleases: maxReleases,
            owner: owner,
            price: price,
            duration: duration
        });
        emit AccessRequested(id, owner, msg.sender, scopes, price, duration, maxReleases, catalogHash, purpose);
    }

    /// @inheritdoc IConsentLedger
    function approve(uint256 id) external {
        Request storage request = _requests[id];
        Status status = _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) revert NotRequestOwner(id, msg.sender);
        _activate(request, id, status, owner);
    }

    /// @inheritdoc IConsentLedger
    function approveBySig(uint256 id, uint256 deadline, bytes calldata signature) external {
        // solhint-disable-next-line not-rely-on-time
        if (block.timestamp > deadline) revert ApprovalDeadlinePassed(deadline, block.timestamp);
        Request storage request = _requests[id];
        Status status = _statusOf(request, id);
        if (status != Status.Pending) revert RequestNotPending(id, status);
        address owner = request.owner;
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(APPROVAL_TYPEHASH, id, deadline)));
        // Asks an ERC-1271 wallet now, so a wallet whose signer changed is judged by its new signer.
        if (!SignatureChecker.isValidSignatureNow(owner, digest, signature)) {
            revert InvalidApprovalSignature(id, owner);
        }
        _activate(request, id, status, owner);
    }

    /// @inheritdoc IConsentLedger
    function deny(uint256 id) external {
        Request storage request = _requests[id];
        Status status = _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) revert NotRequestOwner(id, msg.sender);
        if (status != Status.Pending) revert RequestNotPending(id, status);
        request.status = Status.Denied;
        address company = request.company;
        _refundPending(company, request.price);
        emit AccessDenied(id, owner, company);
    }

    /// @inheritdoc IConsentLedger
    function cancel(uint256 id) external {
        Request storage request = _requests[id];
        Status status = _statusOf(request, id);
        address company = request.company;
        if (msg.sender != company) revert NotRequestCompany(id, msg.sender);
        if (status != Status.Pending) revert RequestNotPending(id, status);
        request.status = Status.Cancelled;
        _refundPending(company, request.price);
        emit RequestCancelled(id, request.owner, company);
    }

    /// @inheritdoc IConsentLedger
    function revoke(uint256 id) external {
        Request storage request = _requests[id];
        Status status = _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) revert NotRequestOwner(id, msg.sender);
        if (status != Status.Active) revert GrantNotActive(id, status);
        uint256 startsAt = request.startsAt;
        uint256 duration = request.duration;
        uint256 expiresAt = startsAt + duration;
        // solhint-disable-next-line not-rely-on-time
        if (block.timestamp >= expiresAt) revert GrantExpired(id, expiresAt);

        uint256 price = request.price;
        uint256 claimedBefore = request.claimed;
        uint256 ownerEarned;
        uint256 companyRefund;
        unchecked {
            // elapsed < duration < 2^32 and price < 2^96: no overflow; ownerEarned < price, and
            // claimedBefore <= ownerEarned because claims only ever credit what was earned. An
            // owed balance never exceeds the ether this contract holds, far below 2^256.
            ownerEarned = (price * (block.timestamp - startsAt)) / duration;
            companyRefund = price - ownerEarned;
            request.status = Status.Revoked;
            // Freezes earned() at revoke time: a revoked grant's earnings equal its claimed amount.
            request.claimed = uint96(ownerEarned);
            uint256 ownerCredit = ownerEarned - claimedBefore;
            if (ownerCredit != 0) _owed[owner] += ownerCredit;
            _totals -= (price - claimedBefore) << _ESCROW_SHIFT;
        }
        address company = request.company;
        if (companyRefund != 0) _owed[company] += companyRefund;
        emit AccessRevoked(id, owner, company, ownerEarned, companyRefund);
    }

    /// @inheritdoc IConsentLedger
    function claim(uint256 id) external returns (uint256 amount) {
        amount = _settle(id);
        // Zero means "nothing earned since the last claim", an exact state, not a balance guess.
        // slither-disable-next-line incorrect-equality
        if (amount == 0) revert NothingToClaim(id);
        _credit(amount);
    }

    /// @inheritdoc IConsentLedger
    function claimMany(uint256[] calldata ids) external returns (uint256 amount) {
        uint256 count = ids.length;
        for (uint256 i; i < count; ++i) {
            // Sum of per-grant amounts is bounded by the escrow, far below 2^256.
            unchecked {
                amount += _settle(ids[i]);
            }
        }
        // slither-disable-next-line incorrect-equality
        if (amount == 0) revert NothingToClaim(0);
        _credit(amount);
    }

    /// @inheritdoc IConsentLedger
    function withdraw() external {
        uint256 amount = _owed[msg.sender];
        // _owed is only moved by this contract's own accounting, so zero is exact.
        // slither-disable-next-line incorrect-equality
        if (amount == 0) revert NothingOwed(msg.sender);
        _owed[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        // The balance is zeroed before the call: re-entering finds nothing owed.
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IConsentLedger
    function publishEndpoint(string calldata url, bytes32 termsHash) external {
        emit EndpointPublished(msg.sender, url, termsHash);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IConsentLedger
    function getRequest(uint256 id) external view returns (Request memory) {
        Request storage request = _requests[id];
        _statusOf(request, id);
        return request;
    }

    /// @inheritdoc IConsentLedger
    function requestCount() external view returns (uint256) {
        return uint64(_totals);
    }

    /// @inheritdoc IConsentLedger
    function isActive(uint256 id) public view returns (bool) {
        Request storage request = _requests[id];
        // solhint-disable-next-line not-rely-on-time
        return request.status == Status.Active && block.timestamp < uint256(request.startsAt) + request.duration;
    }

    /// @inheritdoc IConsentLedger
    function covers(uint256 id, uint64 scopes) external view returns (bool) {
        // A bitmap subset test: "no requested bit outside the grant" is an exact comparison.
        // slither-disable-next-line incorrect-equality
        return scopes != 0 && (scopes & ~_requests[id].scopes) == 0 && isActive(id);
    }

    /// @inheritdoc IConsentLedger
    function earned(uint256 id) external view returns (uint256) {
        return _earned(_requests[id]);
    }

    /// @inheritdoc IConsentLedger
    function claimable(uint256 id) external view returns (uint256) {
        Request storage request = _requests[id];
        return _earned(request) - request.claimed;
    }

    /// @inheritdoc IConsentLedger
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @inheritdoc IConsentLedger
    function escrowHeld() external view returns (uint256) {
        return _totals >> _ESCROW_SHIFT;
    }

    /// @inheritdoc IConsentLedger
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    /**
     * @dev Writes a new Pending request as three whole words. Assigning the struct field by
     * field would read-modify-write each slot once per field (about 1,200 gas more).
     * Layout, as solc lays out {Request} (checked by the tests through getRequest):
     *   slot 0: company (bits 0..159) | scopes (160..223) | maxReleases (224..255)
     *   slot 1: owner (0..159) | price (160..255)
     *   slot 2: startsAt (0..39) = 0 | duration (40..71) | status (72..79) | claimed (80..175) = 0
     */
    function _storeNew(
        uint256 id,
        address company,
        uint64 scopes,
        uint32 maxReleases,
        address owner,
        uint96 price,
        uint32 duration
    ) private {
        Request storage request = _requests[id];
        uint256 pending = uint256(Status.Pending);
        assembly ("memory-safe") {
            let slot := request.slot
            sstore(slot, or(and(company, 0xffffffffffffffffffffffffffffffffffffffff), or(shl(160, and(scopes, 0xffffffffffffffff)), shl(224, and(maxReleases, 0xffffffff)))))
            sstore(add(slot, 1), or(and(owner, 0xffffffffffffffffffffffffffffffffffffffff), shl(160, and(price, 0xffffffffffffffffffffffff))))
            sstore(add(slot, 2), or(shl(40, and(duration, 0xffffffff)), shl(72, pending)))
        }
    }

    /// @dev The request's status; reverts for an id that was never requested.
    function _statusOf(Request storage request, uint256 id) private view returns (Status status) {
        status = request.status;
        if (status == Status.None) revert UnknownRequest(id);
    }

    /// @dev Pending -> Active, starting the grant now.
    function _activate(Request storage request, uint256 id, Status status, address owner) private {
        if (status != Status.Pending) revert RequestNotPending(id, status);
        uint40 startsAt = uint40(block.timestamp);
        request.startsAt = startsAt;
        request.status = Status.Active;
        emit AccessApproved(id, owner, request.company, startsAt);
    }

    /// @dev Moves a pending request's whole price from escrow to its company's owed balance.
    function _refundPending(address company, uint256 price) private {
        _owed[company] += price;
        unchecked {
            // The price was added to the escrow when the request was made and nothing left since.
            _totals -= price << _ESCROW_SHIFT;
        }
    }

    /**
     * @dev Marks what grant `id` earned as claimed and returns the newly claimed amount; the
     * caller must be the grant's owner. Leaves the owed balance to the caller (see _credit).
     */
    function _settle(uint256 id) private returns (uint256 amount) {
        Request storage request = _requests[id];
        _statusOf(request, id);
        if (msg.sender != request.owner) revert NotRequestOwner(id, msg.sender);
        uint256 total = _earned(request);
        amount = total - request.claimed;
        if (amount != 0) {
            request.claimed = uint96(total);
            emit EarningsClaimed(id, msg.sender, amount);
        }
    }

    /// @dev Moves `amount` claimed wei from escrow to the caller's owed balance.
    function _credit(uint256 amount) private {
        _owed[msg.sender] += amount;
        unchecked {
            // Claimed amounts never exceed the prices still counted in the escrow.
            _totals -= amount << _ESCROW_SHIFT;
        }
    }

    /// @dev price * min(elapsed, duration) / duration while active or expired; frozen once revoked.
    function _earned(Request storage request) private view returns (uint256) {
        Status status = request.status;
        if (status == Status.Revoked) return request.claimed;
        if (status != Status.Active) return 0;
        uint256 duration = request.duration;
        // solhint-disable-next-line not-rely-on-time
        uint256 elapsed = block.timestamp - request.startsAt;
        if (elapsed > duration) elapsed = duration;
        unchecked {
            // price < 2^96 and elapsed <= duration < 2^32: the product fits easily.
            return (uint256(request.price) * elapsed) / duration;
        }
    }
}
