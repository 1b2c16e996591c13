use super::*;
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
    assert_eq!(entry.first_block_time, None);
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
fn child_accumulates_work_and_keeps_block_one_time() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 6, test_address(0));
    let first_time = blocks[0].header.time;
    let mut parent = chain.entry_of(&genesis).clone();
    for block in &blocks {
        let entry = chain.entry_of(&block.hash());
        let work = Target::from_compact(block.header.bits).unwrap().work();
        assert_eq!(
            entry.chain_work,
            parent.chain_work.checked_add(work).unwrap()
        );
        assert!(
            entry.chain_work > parent.chain_work,
            "work strictly increases"
        );
        assert_eq!(entry.first_block_time, Some(first_time));
        assert_eq!(entry, &parent.child(block.header).unwrap());
        assert_eq!(entry.header, block.header);
        assert_eq!(entry.status, BlockStatus::Valid);
        parent = entry.clone();
    }

    // A branch off block 3 keeps the same block 1.
    let side = chain.extend(&blocks[2].hash(), 2, test_address(1));
    for block in &side {
        assert_eq!(
            chain.entry_of(&block.hash()).first_block_time,
            Some(first_time)
        );
    }

    // A branch off genesis has its own block 1.
    let own_first = mine_at(&mut chain, &genesis, first_time - 3);
    let next = chain.extend(&own_first.hash(), 2, test_address(1));
    for hash in [own_first.hash(), next[0].hash(), next[1].hash()] {
        assert_eq!(chain.entry_of(&hash).first_block_time, Some(first_time - 3));
    }
}

#[test]
fn child_refuses_undecodable_bits() {
    let chain = TestChain::new();
    let genesis = chain.entry_of(&chain.genesis_hash);
    let mut header = chain.block(&chain.genesis_hash).header;
    header.height = 1;
    header.prev_hash = chain.genesis_hash;
    header.bits = crate::core::consensus::CompactTarget::from_consensus(0);
    assert!(genesis.child(header).is_err());
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
fn child_context_bits_are_genesis_bits_for_blocks_one_and_two() {
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
        }
    );

    // Blocks 1 and 2 come far faster than the 10 s schedule.
    let one = mine_at(&mut chain, &genesis, genesis_time + 1);
    let ctx = child_context(&chain, chain.entry_of(&one.hash()), &chain.spec).unwrap();
    assert_eq!(ctx.parent_height, 1);
    assert_eq!(
        ctx.expected_bits, genesis_bits,
        "block 2 carries the genesis bits"
    );
    let two = mine_at(&mut chain, &one.hash(), genesis_time + 2);
    assert_eq!(two.header.bits, genesis_bits);

    // Block 3 follows ASERT anchored at block 1: 9 s ahead of schedule is a harder target.
    let two_entry = chain.entry_of(&two.hash());
    let ctx = child_context(&chain, two_entry, &chain.spec).unwrap();
    assert_eq!(
        ctx.expected_bits,
        next_bits(&chain.spec, 2, two.header.time, Some(one.header.time))
    );
    assert!(
        Target::from_compact(ctx.expected_bits).unwrap() < chain.spec.genesis_target,
        "{} should be harder than {}",
        ctx.expected_bits,
        genesis_bits
    );
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
