use super::*;
use crate::core::consensus::asert::max_interval_credit;
use crate::core::consensus::validation::check_header;
use crate::core::primitives::Block;
use crate::core::testkit::{solve, test_address, test_spec, TestChain};

fn hashes(blocks: &[Block]) -> Vec<BlockHash> {
    blocks.iter().map(Block::hash).collect()
}

fn reversed(mut list: Vec<BlockHash>) -> Vec<BlockHash> {
    list.reverse();
    list
}

/// Mines a child of `parent` with header time `time` (which must be valid for it) and adds it.
fn mine_at(chain: &mut TestChain, parent: &BlockHash, time: u32) -> Block {
    let mut block = chain.template(parent, Vec::new(), test_address(0));
    block.header.time = time;
    solve(&mut block.header);
    let ctx = child_context(chain, chain.entry_of(parent), &chain.spec).unwrap();
    check_header(&block.header, &ctx, u64::from(time), &chain.spec).expect("a valid time");
    chain.add(block.clone());
    block
}

// ---- plan_reorg ----

#[test]
fn plan_reorg_fork_at_genesis() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let a = chain.extend(&genesis, 3, test_address(0));
    let b = chain.extend(&genesis, 2, test_address(1));
    assert_ne!(a[0].hash(), b[0].hash());
    let (a_tip, b_tip) = (chain.entry_of(&a[2].hash()), chain.entry_of(&b[1].hash()));

    let plan = plan_reorg(&chain, a_tip, b_tip).unwrap();
    assert_eq!(plan.fork_point, genesis);
    assert_eq!(plan.disconnect, reversed(hashes(&a)));
    assert_eq!(plan.connect, hashes(&b));

    let back = plan_reorg(&chain, b_tip, a_tip).unwrap();
    assert_eq!(back.fork_point, genesis);
    assert_eq!(back.disconnect, reversed(hashes(&b)));
    assert_eq!(back.connect, hashes(&a));
}

#[test]
fn plan_reorg_fork_in_the_middle() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let main = chain.extend(&genesis, 5, test_address(0));
    let fork_point = main[2].hash(); // height 3
    let side = chain.extend(&fork_point, 3, test_address(1)); // heights 4..=6
    assert_eq!(side[2].header.height, 6);
    let (main_tip, side_tip) = (
        chain.entry_of(&main[4].hash()),
        chain.entry_of(&side[2].hash()),
    );

    let plan = plan_reorg(&chain, main_tip, side_tip).unwrap();
    assert_eq!(
        plan,
        ReorgPlan {
            fork_point,
            disconnect: vec![main[4].hash(), main[3].hash()],
            connect: hashes(&side),
        }
    );

    let back = plan_reorg(&chain, side_tip, main_tip).unwrap();
    assert_eq!(
        back,
        ReorgPlan {
            fork_point,
            disconnect: reversed(hashes(&side)),
            connect: vec![main[3].hash(), main[4].hash()],
        }
    );
}

#[test]
fn plan_reorg_from_a_tip_to_itself_is_empty() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 3, test_address(0));
    for hash in [genesis, blocks[0].hash(), blocks[2].hash()] {
        let entry = chain.entry_of(&hash);
        let plan = plan_reorg(&chain, entry, entry).unwrap();
        assert_eq!(
            plan,
            ReorgPlan {
                fork_point: hash,
                disconnect: Vec::new(),
                connect: Vec::new(),
            }
        );
    }
}

#[test]
fn plan_reorg_along_one_chain_only_connects_or_only_disconnects() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 5, test_address(0));
    let (old_tip, new_tip) = (
        chain.entry_of(&blocks[1].hash()),
        chain.entry_of(&blocks[4].hash()),
    );

    let forward = plan_reorg(&chain, old_tip, new_tip).unwrap();
    assert_eq!(forward.fork_point, blocks[1].hash());
    assert!(forward.disconnect.is_empty());
    assert_eq!(forward.connect, hashes(&blocks[2..]));

    let from_genesis = plan_reorg(&chain, chain.entry_of(&genesis), new_tip).unwrap();
    assert_eq!(from_genesis.fork_point, genesis);
    assert!(from_genesis.disconnect.is_empty());
    assert_eq!(from_genesis.connect, hashes(&blocks));

    let backward = plan_reorg(&chain, new_tip, old_tip).unwrap();
    assert_eq!(backward.fork_point, blocks[1].hash());
    assert_eq!(backward.disconnect, reversed(hashes(&blocks[2..])));
    assert!(backward.connect.is_empty());
}

#[test]
fn plan_reorg_to_a_branch_with_unknown_ancestors_fails() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let ours = chain.extend(&genesis, 1, test_address(0));

    let other_text = test_spec()
        .to_toml()
        .replace("test chain", "another test chain");
    let mut other = TestChain::with_spec(ChainSpec::from_toml(&other_text).unwrap());
    assert_ne!(other.genesis_hash, genesis);
    let other_genesis = other.genesis_hash;
    let theirs = other.extend(&other_genesis, 1, test_address(0));

    let result = plan_reorg(
        &chain,
        chain.entry_of(&ours[0].hash()),
        other.entry_of(&theirs[0].hash()),
    );
    assert_eq!(result, Err(ChainError::Missing(other_genesis)));
    // Two different geneses: the index mixes chains.
    assert!(plan_reorg(
        &chain,
        chain.entry_of(&genesis),
        other.entry_of(&other_genesis)
    )
    .is_err());
}

// ---- BlockIndexEntry ----

#[test]
fn genesis_entry() {
    let chain = TestChain::new();
    let entry = chain.entry_of(&chain.genesis_hash);
    assert_eq!(entry.height(), 0);
    assert_eq!(entry.hash(), chain.genesis_hash);
    assert_eq!(
        entry.asert_clock,
        i64::from(chain.spec.file.consensus.ideal_block_time_secs),
        "genesis is one ideal block time after the anchor's parent"
    );
    assert_eq!(entry.status, BlockStatus::Valid);
    assert_eq!(
        entry.chain_work,
        Target::from_compact(chain.spec.genesis_bits)
            .unwrap()
            .work()
    );
    assert!(entry.chain_work > Work::ZERO);
}

#[test]
fn child_accumulates_work_and_the_capped_schedule_clock() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let params = chain.spec.asert_params();
    let cap = max_interval_credit(&params);
    let genesis_time = chain.entry_of(&genesis).header.time;
    // On schedule, then a day's gap, then a block stamped before its parent.
    let mut tip = chain.extend(&genesis, 3, test_address(0))[2].hash();
    let late = chain.entry_of(&tip).header.time + 86_400;
    tip = mine_at(&mut chain, &tip, late).hash();
    let ctx = child_context(&chain, chain.entry_of(&tip), &chain.spec).unwrap();
    tip = mine_at(&mut chain, &tip, ctx.median_time_past + 1).hash();
    let mut hashes = Vec::new();
    let mut cursor = tip;
    while cursor != genesis {
        hashes.push(cursor);
        cursor = chain.entry_of(&cursor).header.prev_hash;
    }
    hashes.reverse();
    let mut parent = chain.entry_of(&genesis).clone();
    let mut credited = Vec::new();
    for hash in &hashes {
        let entry = chain.entry_of(hash);
        let work = Target::from_compact(entry.header.bits).unwrap().work();
        assert_eq!(
            entry.chain_work,
            parent.chain_work.checked_add(work).unwrap()
        );
        assert!(
            entry.chain_work > parent.chain_work,
            "work strictly increases"
        );
        let interval = i64::from(entry.header.time) - i64::from(parent.header.time);
        assert_eq!(entry.asert_clock - parent.asert_clock, interval.min(cap));
        credited.push(entry.asert_clock - parent.asert_clock);
        assert_eq!(entry, &parent.child(entry.header, &params).unwrap());
        assert_eq!(entry.status, BlockStatus::Valid);
        parent = entry.clone();
    }
    let ideal = params.ideal_block_time;
    assert_eq!(credited[..3], [ideal, ideal, ideal]);
    assert_eq!(credited[3], cap, "a day's gap credits only the cap");
    assert!(credited[4] < 0, "a block before its parent counts in full");
    assert!(
        parent.asert_clock - ideal <= i64::from(parent.header.time - genesis_time),
        "the clock never runs ahead of the timestamps"
    );
}

#[test]
fn child_refuses_undecodable_bits() {
    let chain = TestChain::new();
    let genesis = chain.entry_of(&chain.genesis_hash);
    let mut header = chain.block(&chain.genesis_hash).header;
    header.height = 1;
    header.prev_hash = chain.genesis_hash;
    header.bits = crate::core::consensus::CompactTarget::from_consensus(0);
    assert!(genesis.child(header, &chain.spec.asert_params()).is_err());
}

// ---- fork choice ----

#[test]
fn is_better_chain_needs_strictly_more_work() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let a = chain.extend(&genesis, 3, test_address(0));
    let b = chain.extend(&genesis, 3, test_address(1));
    let a_work = chain.entry_of(&a[2].hash()).chain_work;
    let b_work = chain.entry_of(&b[2].hash()).chain_work;
    assert_eq!(a_work, b_work, "same bits, same length");
    assert!(
        !is_better_chain(&b_work, &a_work),
        "equal work does not switch"
    );
    assert!(!is_better_chain(&a_work, &b_work));

    let longer = chain.extend(&b[2].hash(), 1, test_address(1));
    let longer_work = chain.entry_of(&longer[0].hash()).chain_work;
    assert!(is_better_chain(&longer_work, &a_work));
    assert!(!is_better_chain(&a_work, &longer_work));
    assert!(!is_better_chain(&Work::ZERO, &Work::ZERO));
}

// ---- child_context ----

#[test]
fn child_context_median_of_evenly_spaced_times() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 15, test_address(0));
    let genesis_time = chain.entry_of(&genesis).header.time;
    let ideal = chain.spec.file.consensus.ideal_block_time_secs;
    assert!(blocks
        .iter()
        .enumerate()
        .all(|(i, b)| b.header.time == genesis_time + ideal * (i as u32 + 1)));

    let mut hashes = vec![genesis];
    hashes.extend(blocks.iter().map(Block::hash));
    for (height, hash) in hashes.iter().enumerate() {
        let height = height as u32;
        let ctx = child_context(&chain, chain.entry_of(hash), &chain.spec).unwrap();
        assert_eq!(ctx.parent_height, height);
        // The middle (upper middle for even counts) of the last min(height + 1, 11) blocks.
        let lowest = height.saturating_sub(10);
        let count = height - lowest + 1;
        let median_height = lowest + count / 2;
        assert_eq!(
            ctx.median_time_past,
            genesis_time + ideal * median_height,
            "parent height {height}"
        );
    }
}

#[test]
fn child_context_median_covers_exactly_eleven_blocks() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let mut tip = genesis;
    let mut times = vec![chain.entry_of(&genesis).header.time];
    for height in 1..=16u32 {
        let ctx = child_context(&chain, chain.entry_of(&tip), &chain.spec).unwrap();
        // Block 5 is far ahead; the others rise just above the median time past.
        let time = if height == 5 {
            times[0] + 10_000
        } else {
            ctx.median_time_past + height
        };
        tip = mine_at(&mut chain, &tip, time).hash();
        times.push(time);
    }
    let median = |slice: &[u32]| {
        let mut sorted = slice.to_vec();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    // Parent 16: blocks 6..=16 count; block 5 (the outlier) does not.
    let last_eleven = median(&times[6..=16]);
    assert_ne!(
        last_eleven,
        median(&times[5..=16]),
        "the test discriminates 11 from 12"
    );
    assert_ne!(
        last_eleven,
        median(&times[7..=16]),
        "the test discriminates 11 from 10"
    );
    let ctx = child_context(&chain, chain.entry_of(&tip), &chain.spec).unwrap();
    assert_eq!(ctx.median_time_past, last_eleven);
    assert_eq!(MEDIAN_TIME_SPAN, 11);
}

#[test]
fn median_time_past_by_hand() {
    assert_eq!(median_time_past(&[]), 0);
    assert_eq!(median_time_past(&[7]), 7);
    assert_eq!(median_time_past(&[5, 1, 3]), 3);
    assert_eq!(
        median_time_past(&[4, 1, 3, 2]),
        3,
        "upper middle of an even count"
    );
    assert_eq!(median_time_past(&[9, 9, 1, 9, 1]), 9);
}

#[test]
fn child_context_bits_follow_asert_anchored_at_genesis() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let genesis_bits = chain.spec.genesis_bits;
    let genesis_time = chain.entry_of(&genesis).header.time;

    let ctx = child_context(&chain, chain.entry_of(&genesis), &chain.spec).unwrap();
    assert_eq!(
        ctx,
        HeaderContext {
            parent_height: 0,
            median_time_past: genesis_time,
            expected_bits: genesis_bits,
        },
        "block 1 carries the genesis bits"
    );

    // Block 1 comes far faster than the schedule: block 2 is already harder.
    let one = mine_at(&mut chain, &genesis, genesis_time + 1);
    let one_entry = chain.entry_of(&one.hash());
    let ctx = child_context(&chain, one_entry, &chain.spec).unwrap();
    assert_eq!(ctx.parent_height, 1);
    assert_eq!(
        ctx.expected_bits,
        next_bits(&chain.spec, 1, one_entry.asert_clock)
    );
    assert!(
        Target::from_compact(ctx.expected_bits).unwrap() < chain.spec.genesis_target,
        "{} should be harder than {}",
        ctx.expected_bits,
        genesis_bits
    );
}

/// Issue 11, item 2: on the old rule (ASERT anchored at block 1, at block 1's own time) a
/// branch whose block 1 was stamped one second after genesis, mined when the clock reads a
/// year later, ran at the pow limit for millions of blocks. Anchored at genesis with a capped
/// clock, no timestamp a miner may choose eases the branch by more than 2^(1/4) a block.
#[test]
fn no_miner_chooses_the_difficulty_schedule() {
    // The test spec's genesis is at the pow limit; this one starts 256 times harder, so
    // easing shows.
    let spec = crate::core::testkit::test_spec_with_genesis_bits("0x1f7fffff");
    assert_ne!(spec.genesis_bits, spec.pow_limit.to_compact());
    let mut chain = TestChain::with_spec(spec);
    let genesis = chain.genesis_hash;
    let genesis_time = chain.entry_of(&genesis).header.time;
    let genesis_target = chain.spec.genesis_target;
    let a_year_later = genesis_time + 365 * 86_400;
    let one = mine_at(&mut chain, &genesis, genesis_time + 1);
    let mut tip = one.hash();
    let mut easiest = genesis_target;
    for i in 0..4u32 {
        // Each block as late as the clock allows.
        let block = mine_at(&mut chain, &tip, a_year_later + i);
        tip = block.hash();
        let target = Target::from_compact(block.header.bits).unwrap();
        easiest = easiest.max(target);
    }
    let ctx = child_context(&chain, chain.entry_of(&tip), &chain.spec).unwrap();
    let next = Target::from_compact(ctx.expected_bits).unwrap();
    // The old rule's answer for the same timestamps: the pow limit.
    let params = chain.spec.asert_params();
    let old_rule = crate::core::consensus::asert::next_target(
        &genesis_target,
        i64::from(a_year_later + 3) - (i64::from(genesis_time + 1) - params.ideal_block_time),
        4,
        &params,
    );
    assert_eq!(old_rule, params.pow_limit, "the attack as it was");
    // Four capped credits: at most 2^(4/4) = 2 times easier (rounding aside).
    let bound = genesis_target
        .as_u256()
        .saturating_mul(ruint::aliases::U256::from(201u32))
        / ruint::aliases::U256::from(100u32);
    assert!(next.as_u256() <= bound, "{next:?} is too easy");
    assert!(easiest.as_u256() <= bound);
}

#[test]
fn child_context_bits_stay_at_genesis_bits_on_schedule() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 4, test_address(0));
    for block in &blocks {
        assert_eq!(block.header.bits, chain.spec.genesis_bits);
        let ctx = child_context(&chain, chain.entry_of(&block.hash()), &chain.spec).unwrap();
        assert_eq!(ctx.expected_bits, chain.spec.genesis_bits);
    }
}

#[test]
fn after_a_failed_reorg_the_first_seen_tip_wins_unless_beaten() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let a = chain.extend(&genesis, 3, test_address(0));
    let b = chain.extend(&genesis, 4, test_address(1));
    let old = chain.entry_of(&a[2].hash()).clone();
    let equal = chain.entry_of(&b[2].hash()).clone();
    let shorter = chain.entry_of(&b[1].hash()).clone();
    let heavier = chain.entry_of(&b[3].hash()).clone();
    assert!(
        should_return_after_failed_reorg(&old, &equal),
        "equal work: first seen"
    );
    assert!(should_return_after_failed_reorg(&old, &shorter));
    assert!(!should_return_after_failed_reorg(&old, &heavier));
    assert!(
        !should_return_after_failed_reorg(&old, &old),
        "already there"
    );
}
