// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IConsentLedger} from "./IConsentLedger.sol";

/**
 * @title ConsentLedger
 * @notice Escrowed, time-limited, revocable consent between companies and vault owners.
 * @dev Reentrancy: the only external calls are `withdraw`'s value transfer, made after the
 * caller's balance is zeroed, and `approveBySig`'s static calls to ERC-1271 wallets, which
 * cannot change state. `claim` and `revoke` make no external call at all. So no
 * ReentrancyGuard: it would cost every operation two extra storage writes and protect nothing.
 */
contract ConsentLedger is IConsentLedger, EIP712 {
    /// @inheritdoc IConsentLedger
    bytes32 public constant APPROVAL_TYPEHASH = keccak256("Approval(uint256 requestId,uint256 deadline)");

    /// @dev The fewest and the most owners of a group request.
    uint256 private constant _MIN_OWNERS = 2;
    uint256 private constant _MAX_OWNERS = 6;

    /// @dev The longest company name and URL {describeCompany} accepts, in bytes: enough for
    /// any trading name and address, short enough that no log entry floods a vault's screen.
    uint256 private constant _MAX_NAME_BYTES = 64;
    uint256 private constant _MAX_URL_BYTES = 256;

    /// @dev One owner of a group request and the wei of its share it has claimed: one slot.
    struct Member {
        address account;
        uint96 claimed;
    }

    /**
     * @dev A stored request. Its first three slots are {IConsentLedger.Request}'s fields in the
     * same order. A single-owner request uses only those, with `memberCount` and `approvals`
     * zero. A group request stores the zero address as `owner` (requestAccess refuses it, so
     * it marks a group), leaves `claimed` zero, keeps its owner count and one approval bit per
     * owner in slot 2's spare bits, and one {Member} slot per owner after that.
     */
    struct Record {
        // slot 0
        address company;
        uint64 scopes;
        uint32 maxReleases;
        // slot 1
        address owner;
        uint96 price;
        // slot 2
        uint40 startsAt;
        uint32 duration;
        Status status;
        uint96 claimed;
        uint8 memberCount;
        uint8 approvals;
        // slots 3 .. 3 + memberCount - 1
        Member[_MAX_OWNERS] members;
    }

    mapping(uint256 id => Record) private _requests;
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
        uint96 price;
        (id, price) = _escrowNew(scopes, duration);
        if (owner == address(0)) revert InvalidOwner(owner);
        if (owner == msg.sender) revert SelfRequest(owner);
        _storeNew({
            id: id,
            company: msg.sender,
            scopes: scopes,
            maxReleases: maxReleases,
            owner: owner,
            price: price,
            duration: duration,
            memberCount: 0
        });
        emit AccessRequested(id, owner, msg.sender, scopes, price, duration, maxReleases, catalogHash, purpose);
    }

    /// @inheritdoc IConsentLedger
    function requestGroupAccess(
        address[] calldata owners,
        uint64 scopes,
        uint32 duration,
        uint32 maxReleases,
        bytes32 catalogHash,
        string calldata purpose
    ) external payable returns (uint256 id) {
        uint96 price;
        (id, price) = _escrowNew(scopes, duration);
        uint256 count = owners.length;
        if (count < _MIN_OWNERS) revert GroupTooSmall(count, _MIN_OWNERS);
        if (count > _MAX_OWNERS) revert GroupTooLarge(count, _MAX_OWNERS);
        for (uint256 i; i < count; ++i) {
            address owner = owners[i];
            if (owner == address(0)) revert InvalidOwner(owner);
            if (owner == msg.sender) revert SelfRequest(owner);
            for (uint256 j; j < i; ++j) {
                if (owners[j] == owner) revert DuplicateOwner(owner);
            }
        }
        _storeNew({
            id: id,
            company: msg.sender,
            scopes: scopes,
            maxReleases: maxReleases,
            owner: address(0),
            price: price,
            duration: duration,
            memberCount: count
        });
        Member[_MAX_OWNERS] storage members = _requests[id].members;
        for (uint256 i; i < count; ++i) {
            members[i].account = owners[i];
        }
        for (uint256 i; i < count; ++i) {
            emit GroupAccessRequested(
                id,
                owners[i],
                msg.sender,
                owners,
                scopes,
                price,
                duration,
                maxReleases,
                catalogHash,
                purpose
            );
        }
    }

    /// @inheritdoc IConsentLedger
    function approve(uint256 id) external {
        Record storage request = _requests[id];
        Status status = _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) {
            if (owner != address(0)) revert NotRequestOwner(id, msg.sender);
            _approveAsMember(request, id, status, _memberIndex(request, id, msg.sender));
            return;
        }
        _activate(request, id, status, owner);
    }

    /// @inheritdoc IConsentLedger
    function approveBySig(uint256 id, uint256 deadline, bytes calldata signature) external {
        // solhint-disable-next-line not-rely-on-time
        if (block.timestamp > deadline) revert ApprovalDeadlinePassed(deadline, block.timestamp);
        Record storage request = _requests[id];
        Status status = _statusOf(request, id);
        if (status != Status.Pending) revert RequestNotPending(id, status);
        address owner = request.owner;
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(APPROVAL_TYPEHASH, id, deadline)));
        if (owner == address(0)) {
            _approveAsMember(request, id, status, _signerIndex(request, id, digest, signature));
            return;
        }
        // Asks an ERC-1271 wallet now, so a wallet whose signer changed is judged by its new signer.
        if (!SignatureChecker.isValidSignatureNow(owner, digest, signature)) {
            revert InvalidApprovalSignature(id, owner);
        }
        _activate(request, id, status, owner);
    }

    /// @inheritdoc IConsentLedger
    function deny(uint256 id) external {
        Record storage request = _requests[id];
        Status status = _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) {
            if (owner != address(0)) revert NotRequestOwner(id, msg.sender);
            _denyAsMember(request, id, status);
            return;
        }
        if (status != Status.Pending) revert RequestNotPending(id, status);
        request.status = Status.Denied;
        address company = request.company;
        _refundPending(company, request.price);
        emit AccessDenied(id, owner, company);
    }

    /// @inheritdoc IConsentLedger
    function cancel(uint256 id) external {
        Record storage request = _requests[id];
        Status status = _statusOf(request, id);
        address company = request.company;
        if (msg.sender != company) revert NotRequestCompany(id, msg.sender);
        if (status != Status.Pending) revert RequestNotPending(id, status);
        request.status = Status.Cancelled;
        _refundPending(company, request.price);
        address owner = request.owner;
        if (owner != address(0)) {
            emit RequestCancelled(id, owner, company);
            return;
        }
        uint256 count = request.memberCount;
        for (uint256 i; i < count; ++i) {
            emit RequestCancelled(id, request.members[i].account, company);
        }
    }

    /// @inheritdoc IConsentLedger
    function revoke(uint256 id) external {
        Record storage request = _requests[id];
        Status status = _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) {
            if (owner != address(0)) revert NotRequestOwner(id, msg.sender);
            _memberIndex(request, id, msg.sender);
            _revokeGroup(request, id, status);
            return;
        }
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

    /// @inheritdoc IConsentLedger
    function describeCompany(string calldata name, string calldata url) external {
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0 || nameLength > _MAX_NAME_BYTES) {
            revert InvalidCompanyName(nameLength, _MAX_NAME_BYTES);
        }
        uint256 urlLength = bytes(url).length;
        if (urlLength > _MAX_URL_BYTES) revert CompanyUrlTooLong(urlLength, _MAX_URL_BYTES);
        emit CompanyDescribed(msg.sender, name, url);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IConsentLedger
    function getRequest(uint256 id) external view returns (Request memory) {
        Record storage request = _requests[id];
        Status status = _statusOf(request, id);
        return
            Request({
                company: request.company,
                scopes: request.scopes,
                maxReleases: request.maxReleases,
                owner: request.owner,
                price: request.price,
                startsAt: request.startsAt,
                duration: request.duration,
                status: status,
                // A group's own `claimed` stays zero; a single request has no members.
                claimed: uint96(request.claimed + _claimedByMembers(request))
            });
    }

    /// @inheritdoc IConsentLedger
    function groupMembers(uint256 id) external view returns (GroupMember[] memory members) {
        Record storage request = _requests[id];
        _statusOf(request, id);
        uint256 count = request.memberCount;
        uint256 approvals = request.approvals;
        members = new GroupMember[](count);
        for (uint256 i; i < count; ++i) {
            Member storage member = request.members[i];
            uint96 claimed = member.claimed;
            members[i] = GroupMember({
                owner: member.account,
                approved: (approvals >> i) & 1 == 1,
                share: uint96(_shareOf(request.price, count, i)),
                claimed: claimed,
                claimable: uint96(_memberEarned(request, i) - claimed)
            });
        }
    }

    /// @inheritdoc IConsentLedger
    function requestCount() external view returns (uint256) {
        return uint64(_totals);
    }

    /// @inheritdoc IConsentLedger
    function isActive(uint256 id) public view returns (bool) {
        Record storage request = _requests[id];
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
        Record storage request = _requests[id];
        // An unknown id reads as a group without owners: 0.
        return request.owner == address(0) ? _earnedByMembers(request) : _earned(request);
    }

    /// @inheritdoc IConsentLedger
    function claimable(uint256 id) external view returns (uint256) {
        Record storage request = _requests[id];
        if (request.owner == address(0)) return _earnedByMembers(request) - _claimedByMembers(request);
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

    /// @dev A new request's terms and payment checked (the company's errors first), its id
    /// allocated and its price escrowed; the caller stores it or reverts everything.
    function _escrowNew(uint64 scopes, uint32 duration) private returns (uint256 id, uint96 price) {
        if (msg.value == 0) revert ZeroPrice();
        if (msg.value > type(uint96).max) revert PriceTooLarge(msg.value);
        if (duration == 0) revert ZeroDuration();
        if (scopes == 0) revert EmptyScopes();
        price = uint96(msg.value);
        uint256 totals = _totals;
        unchecked {
            // Bounded by the comment on _totals.
            id = uint64(totals) + 1;
            _totals = totals + 1 + (uint256(price) << _ESCROW_SHIFT);
        }
    }

    /**
     * @dev Writes a new Pending request as three whole words. Assigning the struct field by
     * field would read-modify-write each slot once per field (about 1,200 gas more).
     * Layout, as solc lays out {Record} (checked by the tests through getRequest and
     * groupMembers):
     *   slot 0: company (bits 0..159) | scopes (160..223) | maxReleases (224..255)
     *   slot 1: owner (0..159) | price (160..255)
     *   slot 2: startsAt (0..39) = 0 | duration (40..71) | status (72..79) | claimed (80..175) = 0
     *           | memberCount (176..183) | approvals (184..191) = 0
     * `memberCount` is at most _MAX_OWNERS, so it fits its 8 bits.
     */
    function _storeNew(
        uint256 id,
        address company,
        uint64 scopes,
        uint32 maxReleases,
        address owner,
        uint96 price,
        uint32 duration,
        uint256 memberCount
    ) private {
        Record storage request = _requests[id];
        uint256 pending = uint256(Status.Pending);
        assembly ("memory-safe") {
            let slot := request.slot
            sstore(slot, or(and(company, 0xffffffffffffffffffffffffffffffffffffffff), or(shl(160, and(scopes, 0xffffffffffffffff)), shl(224, and(maxReleases, 0xffffffff)))))
            sstore(add(slot, 1), or(and(owner, 0xffffffffffffffffffffffffffffffffffffffff), shl(160, and(price, 0xffffffffffffffffffffffff))))
            sstore(add(slot, 2), or(or(shl(40, and(duration, 0xffffffff)), shl(72, pending)), shl(176, memberCount)))
        }
    }

    /// @dev The request's status; reverts for an id that was never requested.
    function _statusOf(Record storage request, uint256 id) private view returns (Status status) {
        status = request.status;
        if (status == Status.None) revert UnknownRequest(id);
    }

    /// @dev Pending -> Active, starting the grant now.
    function _activate(Record storage request, uint256 id, Status status, address owner) private {
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
        Record storage request = _requests[id];
        _statusOf(request, id);
        address owner = request.owner;
        if (msg.sender != owner) {
            if (owner != address(0)) revert NotRequestOwner(id, msg.sender);
            return _settleMember(request, id, _memberIndex(request, id, msg.sender));
        }
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
    function _earned(Record storage request) private view returns (uint256) {
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

    // ---------------------------------------------------------------- group internals

    /// @dev The index of `account` among group request `id`'s owners; reverts NotRequestOwner
    /// if it is none of them.
    function _memberIndex(Record storage request, uint256 id, address account) private view returns (uint256 index) {
        uint256 count = request.memberCount;
        for (; index < count; ++index) {
            if (request.members[index].account == account) return index;
        }
        revert NotRequestOwner(id, account);
    }

    /**
     * @dev The index of the group owner whose approval `signature` over `digest` is: an owner
     * that ECDSA recovers it to, else an owner that is an ERC-1271 wallet accepting it now
     * (as SignatureChecker asks a single owner). Reverts InvalidGroupApprovalSignature.
     */
    function _signerIndex(
        Record storage request,
        uint256 id,
        bytes32 digest,
        bytes calldata signature
    ) private view returns (uint256) {
        // The third value only details a malformed signature, which simply matches no owner.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecover(digest, signature);
        uint256 count = request.memberCount;
        if (error == ECDSA.RecoverError.NoError) {
            for (uint256 i; i < count; ++i) {
                if (request.members[i].account == signer) return i;
            }
        }
        for (uint256 i; i < count; ++i) {
            address account = request.members[i].account;
            if (account.code.length != 0 && SignatureChecker.isValidERC1271SignatureNow(account, digest, signature)) {
                return i;
            }
        }
        revert InvalidGroupApprovalSignature(id, signer);
    }

    /// @dev Records the approval of owner `index` of pending group request `id`; the last one
    /// starts the grant now.
    function _approveAsMember(Record storage request, uint256 id, Status status, uint256 index) private {
        if (status != Status.Pending) revert RequestNotPending(id, status);
        address owner = request.members[index].account;
        uint256 approvals = request.approvals;
        uint256 bit = 1 << index;
        if (approvals & bit != 0) revert AlreadyApproved(id, owner);
        approvals |= bit;
        request.approvals = uint8(approvals);
        address company = request.company;
        emit GroupMemberApproved(id, owner, company);
        uint256 count = request.memberCount;
        if (approvals != (1 << count) - 1) return;
        uint40 startsAt = uint40(block.timestamp);
        request.startsAt = startsAt;
        request.status = Status.Active;
        for (uint256 i; i < count; ++i) {
            emit GroupAccessApproved(id, request.members[i].account, company, startsAt);
        }
    }

    /// @dev Pending group request `id` -> Denied by the caller, one of its owners.
    function _denyAsMember(Record storage request, uint256 id, Status status) private {
        _memberIndex(request, id, msg.sender);
        if (status != Status.Pending) revert RequestNotPending(id, status);
        request.status = Status.Denied;
        address company = request.company;
        _refundPending(company, request.price);
        uint256 count = request.memberCount;
        for (uint256 i; i < count; ++i) {
            emit GroupAccessDenied(id, request.members[i].account, company, msg.sender);
        }
    }

    /**
     * @dev Active group grant `id` -> Revoked, settling every owner: each is credited what its
     * share earned and had not claimed, and its `claimed` set to that earning (which freezes
     * it, as a single grant's); the company is credited the price minus all owners' earnings.
     */
    function _revokeGroup(Record storage request, uint256 id, Status status) private {
        if (status != Status.Active) revert GrantNotActive(id, status);
        uint256 startsAt = request.startsAt;
        uint256 duration = request.duration;
        uint256 expiresAt = startsAt + duration;
        // solhint-disable-next-line not-rely-on-time
        if (block.timestamp >= expiresAt) revert GrantExpired(id, expiresAt);

        uint256 price = request.price;
        uint256 count = request.memberCount;
        uint256 firstEarned;
        uint256 otherEarned;
        uint256 companyRefund;
        unchecked {
            // elapsed < duration < 2^32 and every share <= price < 2^96: the products fit. Each
            // share's earning is at most the share (elapsed < duration), and the shares add up
            // to the price, so the earnings add up to at most the price: no underflow.
            uint256 elapsed = block.timestamp - startsAt;
            firstEarned = (_shareOf(price, count, 0) * elapsed) / duration;
            otherEarned = (_shareOf(price, count, 1) * elapsed) / duration;
            // The owners after the first have equal shares, so they earn the same rounded-down
            // amount: (count - 1) * otherEarned is the sum of their earnings, to the wei.
            // slither-disable-next-line divide-before-multiply
            companyRefund = price - firstEarned - (count - 1) * otherEarned;
        }
        request.status = Status.Revoked;
        address company = request.company;
        uint256 claimedBefore = 0;
        for (uint256 i; i < count; ++i) {
            Member storage member = request.members[i];
            address account = member.account;
            uint256 ownerEarned = i == 0 ? firstEarned : otherEarned;
            uint256 claimed = member.claimed;
            unchecked {
                // claimed <= ownerEarned: claims only ever credit what the share had earned, and
                // earnings only grow while active. The sum of the claims is at most the price.
                claimedBefore += claimed;
                if (ownerEarned != claimed) {
                    member.claimed = uint96(ownerEarned);
                    _owed[account] += ownerEarned - claimed;
                }
            }
            emit GroupAccessRevoked(id, account, company, msg.sender, ownerEarned, companyRefund);
        }
        unchecked {
            // The price entered the escrow at request time; only the claims (claimedBefore) left it.
            _totals -= (price - claimedBefore) << _ESCROW_SHIFT;
        }
        if (companyRefund != 0) _owed[company] += companyRefund;
    }

    /// @dev Marks what owner `index`'s share of group grant `id` earned as claimed and returns
    /// the newly claimed amount (see _settle).
    function _settleMember(Record storage request, uint256 id, uint256 index) private returns (uint256 amount) {
        Member storage member = request.members[index];
        uint256 total = _memberEarned(request, index);
        amount = total - member.claimed;
        if (amount != 0) {
            member.claimed = uint96(total);
            emit EarningsClaimed(id, msg.sender, amount);
        }
    }

    /// @dev Owner `index`'s share of `price` among `count` owners: an equal part, plus the
    /// division's remainder for the first owner, so that the shares add up to `price`.
    function _shareOf(uint256 price, uint256 count, uint256 index) private pure returns (uint256) {
        return index == 0 ? price / count + (price % count) : price / count;
    }

    /// @dev What owner `index`'s share earned: share * min(elapsed, duration) / duration while
    /// active or expired, frozen (its claimed amount) once revoked, 0 otherwise.
    function _memberEarned(Record storage request, uint256 index) private view returns (uint256) {
        Status status = request.status;
        if (status == Status.Revoked) return request.members[index].claimed;
        if (status != Status.Active) return 0;
        uint256 duration = request.duration;
        // solhint-disable-next-line not-rely-on-time
        uint256 elapsed = block.timestamp - request.startsAt;
        if (elapsed > duration) elapsed = duration;
        unchecked {
            // share <= price < 2^96 and elapsed <= duration < 2^32: the product fits easily.
            return (_shareOf(request.price, request.memberCount, index) * elapsed) / duration;
        }
    }

    /// @dev What all owners of a group request earned together (0 for a single-owner request).
    function _earnedByMembers(Record storage request) private view returns (uint256 total) {
        uint256 count = request.memberCount;
        for (uint256 i; i < count; ++i) {
            total += _memberEarned(request, i);
        }
    }

    /// @dev What all owners of a group request claimed together (0 for a single-owner request).
    function _claimedByMembers(Record storage request) private view returns (uint256 total) {
        uint256 count = request.memberCount;
        for (uint256 i; i < count; ++i) {
            total += request.members[i].claimed;
        }
    }
}
