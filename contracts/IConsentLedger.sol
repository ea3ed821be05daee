// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title IConsentLedger
 * @notice A public ledger where a company pays into escrow for time-limited access to derived
 * data from a person's vault, and the person (the owner) approves, denies or revokes it.
 *
 * Lifecycle of a request `id` (ids are sequential from 1):
 *
 *   requestAccess (company pays `price` into escrow)   -> Pending
 *   Pending --approve / approveBySig (owner)-->           Active (startsAt = block.timestamp)
 *   Pending --deny (owner)-->                             Denied    (full refund to the company)
 *   Pending --cancel (company)-->                         Cancelled (full refund to the company)
 *   Active  --revoke (owner)-->                           Revoked   (owner keeps the earned part)
 *   Active and block.timestamp >= startsAt + duration  -> expired (derived, never stored)
 *
 * A group request ({requestGroupAccess}) asks 2 to 6 owners at once under one id. Each owner
 * approves for themself; the grant starts when the last one approves. Any owner's deny (while
 * pending) refunds the company in full, any owner's revoke ends it for everyone, and each owner
 * earns an equal share of the price (the division's remainder goes to the first owner).
 * Its stored `owner` is the zero address; {groupMembers} lists its owners.
 *
 * While active the owner earns `price * elapsed / duration` (elapsed capped at duration).
 * Every credit goes to an owed balance that its account pulls with {withdraw}; the contract's
 * balance always equals {escrowHeld} plus the sum of all {owed} balances.
 */
interface IConsentLedger {
    /// @notice Where a request is in its lifecycle. "Expired" is derived from time, not stored.
    enum Status {
        None,
        Pending,
        Active,
        Denied,
        Cancelled,
        Revoked
    }

    /// @notice A request (a grant once approved). Packs into three storage slots. A group
    /// request's `owner` is the zero address ({groupMembers} lists its owners).
    struct Request {
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
    }

    /// @notice One owner of a group request, as {groupMembers} reports it.
    struct GroupMember {
        // The owner's account.
        address owner;
        // Whether it has approved (a pending request starts once every owner has).
        bool approved;
        // Its part of the price: price / owners, plus the remainder for the first owner.
        uint96 share;
        // Wei of its share already credited to its owed balance.
        uint96 claimed;
        // Wei it could {claim} now.
        uint96 claimable;
    }

    /**
     * @notice A company asked for access and paid `price` into escrow.
     * @dev `catalogHash` and `purpose` are not stored: this event is their commitment.
     */
    event AccessRequested(
        uint256 indexed id,
        address indexed owner,
        address indexed company,
        uint64 scopes,
        uint96 price,
        uint32 duration,
        uint32 maxReleases,
        bytes32 catalogHash,
        string purpose
    );

    /// @notice The owner approved request `id`; the grant runs from `startsAt` for its duration.
    event AccessApproved(uint256 indexed id, address indexed owner, address indexed company, uint40 startsAt);

    /// @notice The owner denied pending request `id`; its price was credited back to the company.
    event AccessDenied(uint256 indexed id, address indexed owner, address indexed company);

    /// @notice The company cancelled pending request `id`; its price was credited back to it.
    event RequestCancelled(uint256 indexed id, address indexed owner, address indexed company);

    /**
     * @notice The owner revoked grant `id`.
     * @param ownerEarned What the owner earned over the grant's life (claimed before or now).
     * @param companyRefund The unearned rest, credited back to the company.
     */
    event AccessRevoked(
        uint256 indexed id,
        address indexed owner,
        address indexed company,
        uint256 ownerEarned,
        uint256 companyRefund
    );

    /**
     * @notice A company asked the group `owners` for access under one id and paid `price` into
     * escrow. Emitted once per owner, with that owner as `owner`, so that each owner's vault
     * finds the request by its own indexed topic.
     * @dev `catalogHash` and `purpose` are not stored: this event is their commitment.
     * @param id The request's id (from the same sequence as single requests).
     * @param owner The owner this copy of the event is for, one of `owners`.
     * @param company The company that asked and paid.
     * @param owners Every owner, in the order the company gave (the first gets the remainder).
     * @param scopes Bitmap over the scope catalog.
     * @param price The whole price in wei, shared equally among `owners`.
     * @param duration Seconds the grant runs once every owner approved.
     * @param maxReleases How many releases the vaults will serve (0 = unlimited).
     * @param catalogHash Hash of the scope catalog the company pays for.
     * @param purpose Human-readable purpose, shown to every owner.
     */
    event GroupAccessRequested(
        uint256 indexed id,
        address indexed owner,
        address indexed company,
        address[] owners,
        uint64 scopes,
        uint96 price,
        uint32 duration,
        uint32 maxReleases,
        bytes32 catalogHash,
        string purpose
    );

    /// @notice `owner` approved its part of group request `id`. The grant starts once every
    /// owner has approved ({GroupAccessApproved}).
    event GroupMemberApproved(uint256 indexed id, address indexed owner, address indexed company);

    /// @notice The last owner of group request `id` approved: the grant runs from `startsAt`.
    /// Emitted once per owner, with that owner as `owner`.
    event GroupAccessApproved(uint256 indexed id, address indexed owner, address indexed company, uint40 startsAt);

    /// @notice `deniedBy`, one of the owners, denied pending group request `id`; its whole price
    /// was credited back to the company. Emitted once per owner, with that owner as `owner`.
    event GroupAccessDenied(uint256 indexed id, address indexed owner, address indexed company, address deniedBy);

    /**
     * @notice `revokedBy`, one of the owners, revoked group grant `id` for every owner. Each
     * owner was credited what its share earned and had not claimed; the company the rest.
     * Emitted once per owner, with that owner as `owner`.
     * @param ownerEarned What `owner`'s share earned over the grant's life (claimed before or now).
     * @param companyRefund The unearned rest of the whole price, credited back to the company.
     */
    event GroupAccessRevoked(
        uint256 indexed id,
        address indexed owner,
        address indexed company,
        address revokedBy,
        uint256 ownerEarned,
        uint256 companyRefund
    );

    /// @notice `amount` wei earned on grant `id` moved from escrow to the owner's owed balance.
    event EarningsClaimed(uint256 indexed id, address indexed owner, uint256 amount);

    /// @notice `account` withdrew its whole owed balance, `amount` wei.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice `account` announced where its vault answers and the hash of its terms.
    event EndpointPublished(address indexed account, string url, bytes32 termsHash);

    /**
     * @notice `company` published the name it goes by and a web address. Nothing checks
     * either: they are the company's own words, which vaults show beside its address, never
     * instead of it. A later description replaces an earlier one.
     * @param name 1 to 64 bytes of UTF-8.
     * @param url At most 256 bytes; empty when the company gives none.
     */
    event CompanyDescribed(address indexed company, string name, string url);

    /// @notice A request must carry a non-zero payment.
    error ZeroPrice();
    /// @notice The payment does not fit the 96-bit price field.
    /// @param price The payment sent, in wei.
    error PriceTooLarge(uint256 price);
    /// @notice A request must last at least one second.
    error ZeroDuration();
    /// @notice A request must ask for at least one scope.
    error EmptyScopes();
    /// @notice No owner may be the zero address.
    /// @param owner The owner given (the zero address).
    error InvalidOwner(address owner);
    /// @notice A company cannot request access to its own vault (nor name itself in a group).
    /// @param account The caller, named as both company and owner.
    error SelfRequest(address account);
    /// @notice No request has this id.
    /// @param id The id asked for.
    error UnknownRequest(uint256 id);
    /// @notice Only the request's owner (for a group request, one of its owners) may do this.
    /// @param id The request's id.
    /// @param caller The account that tried, not the request's owner.
    error NotRequestOwner(uint256 id, address caller);
    /// @notice Only the request's company may do this.
    /// @param id The request's id.
    /// @param caller The account that tried, not the request's company.
    error NotRequestCompany(uint256 id, address caller);
    /// @notice The request is no longer pending.
    /// @param id The request's id.
    /// @param status The state it is in instead.
    error RequestNotPending(uint256 id, Status status);
    /// @notice The request is not an active grant.
    /// @param id The request's id.
    /// @param status The state it is in instead.
    error GrantNotActive(uint256 id, Status status);
    /// @notice The grant ran out at `expiredAt`.
    /// @param id The grant's id.
    /// @param expiredAt When it ran out: its start plus its duration (unix seconds).
    error GrantExpired(uint256 id, uint256 expiredAt);
    /// @notice The signed approval's deadline is before the current block's timestamp.
    /// @param deadline The deadline the owner signed (unix seconds).
    /// @param timestamp The current block's timestamp.
    error ApprovalDeadlinePassed(uint256 deadline, uint256 timestamp);
    /// @notice The approval signature is not the owner's (EOA or ERC-1271 wallet).
    /// @param id The request the signature was to approve.
    /// @param owner The request's owner, whose signature it is not.
    error InvalidApprovalSignature(uint256 id, address owner);
    /// @notice A group request needs at least `minimum` owners.
    /// @param count The number of owners given.
    /// @param minimum The fewest owners a group request may have.
    error GroupTooSmall(uint256 count, uint256 minimum);
    /// @notice A group request may have at most `maximum` owners.
    /// @param count The number of owners given.
    /// @param maximum The most owners a group request may have.
    error GroupTooLarge(uint256 count, uint256 maximum);
    /// @notice A group request names the same owner twice.
    /// @param owner The owner named more than once.
    error DuplicateOwner(address owner);
    /// @notice This owner of group request `id` has already approved it.
    /// @param id The group request's id.
    /// @param owner The owner whose approval is already recorded.
    error AlreadyApproved(uint256 id, address owner);
    /// @notice The approval signature is none of the group's owners' (EOA or ERC-1271 wallet).
    /// @param id The group request the signature was to approve.
    /// @param signer The address the signature recovers to (zero if it recovers to none).
    error InvalidGroupApprovalSignature(uint256 id, address signer);
    /// @notice Grant `id` has nothing earned and unclaimed (0: the whole batch had nothing).
    /// @param id The grant's id, or 0 for a `claimMany` batch.
    error NothingToClaim(uint256 id);
    /// @notice The account has no owed balance to withdraw.
    /// @param account The caller, whose owed balance is zero.
    error NothingOwed(address account);
    /// @notice Sending the owed balance to the account failed; the balance stays owed.
    /// @param account The account the transfer was to.
    /// @param amount The amount that could not be sent, in wei.
    error TransferFailed(address account, uint256 amount);

    /// @notice A company's name must be 1 to `maximum` bytes long.
    /// @param length The name's length in bytes.
    /// @param maximum The longest name allowed, in bytes.
    error InvalidCompanyName(uint256 length, uint256 maximum);

    /// @notice A company's URL must be at most `maximum` bytes long.
    /// @param length The URL's length in bytes.
    /// @param maximum The longest URL allowed, in bytes.
    error CompanyUrlTooLong(uint256 length, uint256 maximum);

    /**
     * @notice Ask `owner` for access to `scopes` for `duration` seconds, paying `msg.value`
     * into escrow. The caller is the company.
     * @param owner The vault owner asked for consent.
     * @param scopes Bitmap over the scope catalog (bit i = catalog entry i); non-zero.
     * @param duration Seconds the grant runs once approved; non-zero.
     * @param maxReleases How many releases the vault will serve (0 = unlimited); enforced off chain.
     * @param catalogHash Hash of the scope catalog (the derivation recipe) the company pays for.
     * @param purpose Human-readable purpose, shown to the owner.
     * @return id The new request's id.
     */
    function requestAccess(
        address owner,
        uint64 scopes,
        uint32 duration,
        uint32 maxReleases,
        bytes32 catalogHash,
        string calldata purpose
    ) external payable returns (uint256 id);

    /**
     * @notice Ask the 2 to 6 distinct `owners` together for access to `scopes` for `duration`
     * seconds, paying `msg.value` into escrow; the caller is the company, and may not be an
     * owner. Each owner's equal share is `msg.value / owners.length`; the first owner also gets
     * the remainder, so the shares add up to the price exactly.
     * @param owners The vault owners asked for consent, each of whom must approve.
     * @param scopes Bitmap over the scope catalog (bit i = catalog entry i); non-zero.
     * @param duration Seconds the grant runs once the last owner approved; non-zero.
     * @param maxReleases How many releases the vaults will serve (0 = unlimited); enforced off chain.
     * @param catalogHash Hash of the scope catalog (the derivation recipe) the company pays for.
     * @param purpose Human-readable purpose, shown to every owner.
     * @return id The new request's id, from the same sequence as {requestAccess}'s.
     */
    function requestGroupAccess(
        address[] calldata owners,
        uint64 scopes,
        uint32 duration,
        uint32 maxReleases,
        bytes32 catalogHash,
        string calldata purpose
    ) external payable returns (uint256 id);

    /**
     * @notice Approve pending request `id`; the caller must be its owner. The grant starts now.
     * For a group request the caller approves as one of its owners, and the grant starts when
     * the last owner approves.
     */
    function approve(uint256 id) external;

    /**
     * @notice Approve pending request `id` with the owner's EIP-712 signature over
     * `Approval(uint256 requestId,uint256 deadline)`; anyone may relay it. EOAs and ERC-1271
     * wallets are both accepted, and a wallet is asked at the moment of use. For a group
     * request the signer is the owner who approves (as with {approve}).
     * @dev A signature cannot be replayed: it names one request, only a pending request can be
     * approved, and a group owner's second approval reverts `AlreadyApproved`.
     * @param deadline Last timestamp at which the approval is valid.
     * @param signature The owner's signature (65 bytes for an EOA).
     */
    function approveBySig(uint256 id, uint256 deadline, bytes calldata signature) external;

    /// @notice Deny pending request `id` (owner only; for a group, any of its owners, even one
    /// who approved); its whole price is credited back to the company.
    function deny(uint256 id) external;

    /// @notice Cancel pending request `id` (company only); its price is credited back to the company.
    function cancel(uint256 id) external;

    /**
     * @notice Revoke active, unexpired grant `id` (owner only). The owner is credited what was
     * earned and not yet claimed; the company is credited the unearned rest. Any owner of a
     * group grant revokes it for every owner: each is credited what its share earned and had
     * not claimed, and the company the unearned rest of the whole price.
     */
    function revoke(uint256 id) external;

    /**
     * @notice Credit what grant `id` earned and was not yet claimed to its owner's owed
     * balance (owner only). Also works after expiry and, for nothing more, after revoke. An
     * owner of a group grant claims what its own share earned.
     * @return amount Wei moved from escrow to the owner's owed balance.
     */
    function claim(uint256 id) external returns (uint256 amount);

    /**
     * @notice {claim} for many grants of the caller at once. Grants with nothing to claim are
     * skipped; reverts with `NothingToClaim(0)` when the whole batch has nothing.
     * @return amount Total wei moved from escrow to the caller's owed balance.
     */
    function claimMany(uint256[] calldata ids) external returns (uint256 amount);

    /// @notice Send the caller its whole owed balance.
    function withdraw() external;

    /// @notice Announce the caller's vault endpoint `url` and its terms' hash (event only).
    function publishEndpoint(string calldata url, bytes32 termsHash) external;

    /**
     * @notice Describe the caller, a company, to the owners it asks: the name it goes by and
     * a web address (event only; see {CompanyDescribed}).
     * @param name 1 to 64 bytes; reverts with `InvalidCompanyName` otherwise.
     * @param url At most 256 bytes, may be empty; reverts with `CompanyUrlTooLong` otherwise.
     */
    function describeCompany(string calldata name, string calldata url) external;

    /**
     * @notice The full stored state of request `id`; reverts with `UnknownRequest` if none.
     * A group request has the zero address as `owner` and, as `claimed`, what all its owners
     * have claimed together; {groupMembers} gives each owner's part.
     */
    function getRequest(uint256 id) external view returns (Request memory);

    /**
     * @notice The owners of group request `id`, in the order the company gave, with whether
     * each approved, its share, what it claimed and what it could claim now. Empty for a
     * single-owner request; reverts with `UnknownRequest` for an unknown id.
     */
    function groupMembers(uint256 id) external view returns (GroupMember[] memory);

    /// @notice How many requests exist; ids run from 1 to this number.
    function requestCount() external view returns (uint256);

    /// @notice Whether `id` is approved, not revoked and not expired (false for unknown ids).
    function isActive(uint256 id) external view returns (bool);

    /// @notice Whether `id` is active and grants every bit of the non-zero `scopes`.
    function covers(uint256 id, uint64 scopes) external view returns (bool);

    /**
     * @notice Wei the owner has earned on `id` so far: `price * min(elapsed, duration) / duration`
     * while active or expired, frozen at revoke time once revoked, 0 otherwise. For a group
     * grant, what all its owners' shares have earned together.
     */
    function earned(uint256 id) external view returns (uint256);

    /// @notice Wei the owner could {claim} on `id` now: earned minus already claimed (for a
    /// group grant, all its owners together).
    function claimable(uint256 id) external view returns (uint256);

    /// @notice Wei `account` can {withdraw} now.
    function owed(address account) external view returns (uint256);

    /// @notice Total wei still held in escrow across all requests.
    function escrowHeld() external view returns (uint256);

    /// @notice The EIP-712 domain separator (name "ConsentLedger", version "1", chain id, this address).
    function domainSeparator() external view returns (bytes32);

    /// @notice keccak256("Approval(uint256 requestId,uint256 deadline)").
    // solhint-disable-next-line func-name-mixedcase
    function APPROVAL_TYPEHASH() external view returns (bytes32);
}
