// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControlEnumerable} from "@openzeppelin/contracts/access/extensions/AccessControlEnumerable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Pulse RewardDistributor
/// @notice Holds an ERC-20 and pays device owners their cumulative rewards against merkle roots
/// posted once per epoch (docs/contracts.md). A root is accepted only with EIP-712 signatures from
/// `threshold` distinct oracle signers, for a strictly larger epoch, and with the cumulative total
/// growing by at most `maxIncreasePerEpoch` per epoch; it becomes claimable after `challengePeriod`
/// seconds, during which a guardian can veto it. Leaves are OpenZeppelin StandardMerkleTree leaves
/// of ['address', 'uint256'] (account, cumulative amount), docs/rewards.md §Merkle tree.
contract RewardDistributor is AccessControlEnumerable, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// EIP-712 struct; `dataUri` is hashed as keccak256(bytes(dataUri)) per EIP-712 §encodeData.
    bytes32 public constant POST_ROOT_TYPEHASH = keccak256(
        "PostRoot(uint256 epoch,bytes32 root,uint256 cumulativeTotal,bytes32 inputsHash,bytes32 paramsHash,string dataUri)"
    );

    struct Root {
        bytes32 root;
        uint256 cumulativeTotal;
        bytes32 inputsHash;
        bytes32 paramsHash;
        uint64 postedAt;
        uint64 claimableAt;
        bool vetoed;
    }

    IERC20 public immutable token;
    uint256 public threshold;
    uint256 public maxIncreasePerEpoch;
    uint64 public challengePeriod;

    mapping(uint256 epoch => Root) private _roots;
    /// Posted epochs in posting order (strictly increasing).
    uint256[] private _epochs;

    /// How many claimable roots, newest first, a claim's proof is checked against.
    uint256 public constant MAX_CLAIM_LOOKBACK = 16;
    mapping(address account => uint256) public claimed;

    event RootPosted(
        uint256 indexed epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        bytes32 inputsHash,
        bytes32 paramsHash,
        string dataUri,
        uint64 claimableAt
    );
    /// The oracle signers whose signatures accepted the root of `epoch`, ascending.
    event RootSigned(uint256 indexed epoch, address[] signers);
    event RootVetoed(uint256 indexed epoch, address indexed guardian);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, uint256 indexed epoch);
    event ThresholdChanged(uint256 threshold);
    event MaxIncreasePerEpochChanged(uint256 maxIncreasePerEpoch);
    event ChallengePeriodChanged(uint64 challengePeriod);

    error InvalidThreshold(uint256 threshold, uint256 signers);
    error ZeroAddress();
    error EmptyRoot();
    error EpochNotIncreasing(uint256 epoch, uint256 latestEpoch);
    error CumulativeDecreased(uint256 cumulativeTotal, uint256 previous);
    error IncreaseOverCap(uint256 increase, uint256 cap);
    error InsufficientSignatures(uint256 given, uint256 required);
    error InvalidSignature(uint256 index);
    error SignerNotOracle(address signer);
    error SignersNotAscending(uint256 index);
    error UnknownEpoch(uint256 epoch);
    error AlreadyVetoed(uint256 epoch);
    error ChallengePeriodOver(uint256 epoch);
    error NoClaimableRoot();
    error InvalidProof();
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);

    constructor(
        IERC20 token_,
        address admin,
        address guardian,
        address[] memory oracleSigners,
        uint256 threshold_,
        uint64 challengePeriod_,
        uint256 maxIncreasePerEpoch_
    ) EIP712("Pulse RewardDistributor", "1") {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (guardian != address(0)) _grantRole(GUARDIAN_ROLE, guardian);
        for (uint256 i = 0; i < oracleSigners.length; i++) {
            if (oracleSigners[i] == address(0)) revert ZeroAddress();
            _grantRole(ORACLE_ROLE, oracleSigners[i]);
        }
        _setThreshold(threshold_);
        challengePeriod = challengePeriod_;
        maxIncreasePerEpoch = maxIncreasePerEpoch_;
        emit ChallengePeriodChanged(challengePeriod_);
        emit MaxIncreasePerEpochChanged(maxIncreasePerEpoch_);
    }

    // ---- administration (DEFAULT_ADMIN_ROLE) ----

    function setThreshold(uint256 threshold_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setThreshold(threshold_);
    }

    function setMaxIncreasePerEpoch(uint256 cap) external onlyRole(DEFAULT_ADMIN_ROLE) {
        maxIncreasePerEpoch = cap;
        emit MaxIncreasePerEpochChanged(cap);
    }

    /// Applies to roots posted afterwards; a posted root keeps the claimableAt it was posted with.
    function setChallengePeriod(uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        challengePeriod = period;
        emit ChallengePeriodChanged(period);
    }

    function _setThreshold(uint256 threshold_) private {
        uint256 n = getRoleMemberCount(ORACLE_ROLE);
        if (threshold_ == 0 || threshold_ > n) revert InvalidThreshold(threshold_, n);
        threshold = threshold_;
        emit ThresholdChanged(threshold_);
    }

    // ---- posting ----

    /// The EIP-712 digest the oracle signers sign for one root.
    function postRootDigest(
        uint256 epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        bytes32 inputsHash,
        bytes32 paramsHash,
        string calldata dataUri
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(POST_ROOT_TYPEHASH, epoch, root, cumulativeTotal, inputsHash, paramsHash, keccak256(bytes(dataUri))))
        );
    }

    /// Anyone may submit; the signatures are the authorisation. Signatures must come from distinct
    /// oracle signers in strictly ascending signer address order (this is how duplicates are refused).
    function postRoot(
        uint256 epoch,
        bytes32 root,
        uint256 cumulativeTotal,
        bytes32 inputsHash,
        bytes32 paramsHash,
        string calldata dataUri,
        bytes[] calldata signatures
    ) external {
        if (root == bytes32(0)) revert EmptyRoot();
        _checkEpochAndCap(epoch, cumulativeTotal);
        address[] memory signers = _checkSignatures(
            postRootDigest(epoch, root, cumulativeTotal, inputsHash, paramsHash, dataUri), signatures
        );
        uint64 claimableAt = uint64(block.timestamp) + challengePeriod;
        _roots[epoch] = Root(root, cumulativeTotal, inputsHash, paramsHash, uint64(block.timestamp), claimableAt, false);
        _epochs.push(epoch);
        emit RootPosted(epoch, root, cumulativeTotal, inputsHash, paramsHash, dataUri, claimableAt);
        emit RootSigned(epoch, signers);
    }

    function _checkEpochAndCap(uint256 epoch, uint256 cumulativeTotal) private view {
        uint256 count = _epochs.length;
        if (count > 0) {
            uint256 latest = _epochs[count - 1];
            if (epoch <= latest) revert EpochNotIncreasing(epoch, latest);
        }
        // The cap compares with the newest root that was not vetoed, times the epochs since it; with
        // none, the first root may hold one epoch's worth.
        (bool found, uint256 prevEpoch, uint256 prevTotal) = _lastStanding();
        if (cumulativeTotal < prevTotal) revert CumulativeDecreased(cumulativeTotal, prevTotal);
        uint256 elapsed = found ? epoch - prevEpoch : 1;
        uint256 perEpoch = maxIncreasePerEpoch;
        // Saturate instead of overflowing: a cap of type(uint256).max means "no cap".
        uint256 cap = perEpoch != 0 && elapsed > type(uint256).max / perEpoch ? type(uint256).max : perEpoch * elapsed;
        if (cumulativeTotal - prevTotal > cap) revert IncreaseOverCap(cumulativeTotal - prevTotal, cap);
    }

    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) private view returns (address[] memory signers) {
        uint256 k = threshold;
        if (signatures.length < k) revert InsufficientSignatures(signatures.length, k);
        signers = new address[](signatures.length);
        address prev = address(0);
        for (uint256 i = 0; i < signatures.length; i++) {
            (address signer, ECDSA.RecoverError e,) = ECDSA.tryRecover(digest, signatures[i]);
            if (e != ECDSA.RecoverError.NoError) revert InvalidSignature(i);
            if (signer <= prev) revert SignersNotAscending(i);
            if (!hasRole(ORACLE_ROLE, signer)) revert SignerNotOracle(signer);
            signers[i] = signer;
            prev = signer;
        }
    }

    function _lastStanding() private view returns (bool found, uint256 epoch, uint256 cumulativeTotal) {
        for (uint256 i = _epochs.length; i > 0; i--) {
            Root storage r = _roots[_epochs[i - 1]];
            if (!r.vetoed) return (true, _epochs[i - 1], r.cumulativeTotal);
        }
        return (false, 0, 0);
    }

    // ---- challenge ----

    function veto(uint256 epoch) external onlyRole(GUARDIAN_ROLE) {
        Root storage r = _roots[epoch];
        if (r.root == bytes32(0)) revert UnknownEpoch(epoch);
        if (r.vetoed) revert AlreadyVetoed(epoch);
        if (block.timestamp >= r.claimableAt) revert ChallengePeriodOver(epoch);
        r.vetoed = true;
        emit RootVetoed(epoch, msg.sender);
    }

    // ---- claims ----

    /// Pays `cumulativeAmount − claimed[account]` to `account` (anyone may submit the claim; the
    /// tokens always go to the account in the leaf). The proof may be for the newest claimable root
    /// or for one of the MAX_CLAIM_LOOKBACK claimable roots before it: a proof fetched just before a
    /// newer root became claimable, or calldata signed on a hardware wallet a while ago, still
    /// works instead of racing the next root. Paying against an older root is safe: every claimable
    /// root is past its challenge period, cumulative amounts only grow, and claimed[account] only
    /// grows, so an older proof can only pay less, never twice.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof) external returns (uint256 amount) {
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        uint256 checked;
        uint256 epoch;
        bool proven;
        for (uint256 i = _epochs.length; i > 0 && checked < MAX_CLAIM_LOOKBACK; i--) {
            Root storage r = _roots[_epochs[i - 1]];
            if (r.vetoed || block.timestamp < r.claimableAt) continue;
            checked++;
            if (MerkleProof.verifyCalldata(proof, r.root, leaf)) {
                (proven, epoch) = (true, _epochs[i - 1]);
                break;
            }
        }
        if (checked == 0) revert NoClaimableRoot();
        if (!proven) revert InvalidProof();
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        amount = cumulativeAmount - already;
        claimed[account] = cumulativeAmount;
        token.safeTransfer(account, amount);
        emit Claimed(account, amount, cumulativeAmount, epoch);
    }

    /// The newest root that is past its challenge period and not vetoed. Walks back from the newest
    /// posted root, so the cost is bounded by the roots still in their challenge period (plus vetoed
    /// ones), never by how long nobody claimed.
    function claimableRoot() public view returns (bool found, uint256 epoch, bytes32 root) {
        for (uint256 i = _epochs.length; i > 0; i--) {
            Root storage r = _roots[_epochs[i - 1]];
            if (r.vetoed || block.timestamp < r.claimableAt) continue;
            return (true, _epochs[i - 1], r.root);
        }
        return (false, 0, bytes32(0));
    }

    // ---- views ----

    function rootOf(uint256 epoch) external view returns (Root memory) {
        return _roots[epoch];
    }

    function latestEpoch() external view returns (bool posted, uint256 epoch) {
        uint256 n = _epochs.length;
        if (n == 0) return (false, 0);
        return (true, _epochs[n - 1]);
    }

    function postedCount() external view returns (uint256) {
        return _epochs.length;
    }
}
