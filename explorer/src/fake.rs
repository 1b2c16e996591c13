//! An in-memory [`ExplorerView`] for tests and benchmarks (feature `fake`): a best chain of
//! made-up blocks with transfers between a few made-up addresses, a mempool and peers, all
//! public so that a test can change any of it (a hostile memo, an empty chain, a failing
//! node).
use crate::model::*;
use crate::view::{clamp_range, ExplorerView, ViewError};
use std::ops::Range;

/// Address prefix of the fake chain.
pub const FAKE_PREFIX: &str = "fake";

/// One made-up block.
#[derive(Clone, Debug)]
pub struct FakeBlock {
    /// Its summary.
    pub row: BlockRow,
    /// Its transfers.
    pub transfers: Vec<TransferRow>,
    /// Its difficulty.
    pub difficulty: f64,
}

/// A made-up node.
#[derive(Clone, Debug)]
pub struct FakeView {
    /// The chain.
    pub chain: ChainInfo,
    /// The best chain, by height.
    pub blocks: Vec<FakeBlock>,
    /// The mempool, best fee rate first.
    pub mempool: Vec<MempoolRow>,
    /// The network.
    pub peers: PeersPage,
    /// When set, every call fails as a node that is shutting down would.
    pub unavailable: bool,
}

/// A made-up 64-hex-digit hash: `tag` then `n`.
pub fn fake_hash(tag: u8, n: u64) -> String {
    format!("{tag:02x}{n:062x}")
}

/// Made-up address number `n`.
pub fn fake_address(n: u64) -> String {
    format!("{FAKE_PREFIX}1{n:040}")
}

/// Made-up transfer `index` of the block at `height`.
pub fn fake_transfer(height: u32, index: usize) -> TransferRow {
    let n = (u64::from(height) << 20) | index as u64;
    TransferRow {
        txid: fake_hash(0x7a, n),
        from: fake_address(n % 5),
        to: fake_address(n % 5 + 1),
        amount: 100_000_000 + n,
        fee: 200,
        nonce: n,
        memo: String::new(),
    }
}

impl FakeView {
    /// A chain of `blocks` blocks (heights `0..blocks`), block `h > 0` holding
    /// `transfers(h)` transfers, ten seconds apart; three pending transfers and one peer.
    pub fn new(blocks: u32, transfers: impl Fn(u32) -> usize) -> FakeView {
        let tip_height = blocks.saturating_sub(1);
        let blocks = (0..blocks)
            .map(|height| {
                let count = if height == 0 { 0 } else { transfers(height) };
                FakeBlock {
                    row: BlockRow {
                        hash: fake_hash(0xb1, height.into()),
                        height,
                        time: 1_795_300_000 + 10 * height,
                        transfers: count,
                        size: 172 + 164 * count,
                        reward: 5_000_000_000 + 200 * count as u64,
                        reward_address: fake_address(0),
                    },
                    transfers: (0..count).map(|i| fake_transfer(height, i)).collect(),
                    difficulty: 1.0 + f64::from(height % 7) / 10.0,
                }
            })
            .collect();
        let mempool = (0..3)
            .map(|i| MempoolRow {
                transfer: fake_transfer(u32::MAX >> 12, i),
                size: 164,
                fee_rate: 3.0 - i as f64,
                added: 1_795_300_000,
            })
            .collect();
        FakeView {
            chain: ChainInfo {
                name: "Cairn Fake".to_string(),
                symbol: "fCAIRN".to_string(),
                decimals: 8,
                address_prefix: FAKE_PREFIX.to_string(),
                node_version: "0.0.0-fake".to_string(),
            },
            blocks,
            mempool,
            peers: PeersPage {
                peer_id: "12D3KooWFakeSelf".to_string(),
                listen_addresses: vec!["/ip4/127.0.0.1/tcp/7370/p2p/12D3KooWFakeSelf".into()],
                peers: vec![PeerRow {
                    peer_id: "12D3KooWFakePeer".to_string(),
                    address: "/ip4/127.0.0.1/tcp/40000".to_string(),
                    direction: "outbound".to_string(),
                    agent: Some("cairn/0.1.0".to_string()),
                    height: Some(tip_height),
                    score: 0,
                }],
                bans: vec![BanRow {
                    peer_id: "12D3KooWFakeBanned".to_string(),
                    until: 1_795_400_000,
                    reason: "sent invalid block <b>x</b>".to_string(),
                }],
            },
            unavailable: false,
        }
    }

    fn check(&self) -> Result<(), ViewError> {
        if self.unavailable {
            Err(ViewError::Unavailable("the node is shutting down".into()))
        } else {
            Ok(())
        }
    }

    fn tip(&self) -> Result<&FakeBlock, ViewError> {
        self.blocks
            .last()
            .ok_or_else(|| ViewError::Unavailable("no genesis".into()))
    }

    fn find_transfer(&self, txid: &str) -> Option<(&FakeBlock, &TransferRow)> {
        self.blocks.iter().find_map(|block| {
            block
                .transfers
                .iter()
                .find(|t| t.txid == txid)
                .map(|t| (block, t))
        })
    }
}

impl ExplorerView for FakeView {
    fn chain(&self) -> ChainInfo {
        self.chain.clone()
    }

    fn summary(&self) -> Result<Summary, ViewError> {
        self.check()?;
        let tip = self.tip()?;
        Ok(Summary {
            height: tip.row.height,
            tip_hash: tip.row.hash.clone(),
            tip_time: tip.row.time,
            bits: "0x1f00ffff".to_string(),
            difficulty: tip.difficulty,
            hash_rate: 65_536.0 / 10.0,
            mempool_count: self.mempool.len(),
            mempool_bytes: self.mempool.iter().map(|r| r.size).sum(),
            peers: self.peers.peers.len(),
            syncing: false,
        })
    }

    fn recent_blocks(&self, before: Option<u32>, limit: usize) -> Result<Vec<BlockRow>, ViewError> {
        self.check()?;
        let end = before.map_or(self.blocks.len(), |b| (b as usize).min(self.blocks.len()));
        Ok(self.blocks[..end]
            .iter()
            .rev()
            .take(limit)
            .map(|b| b.row.clone())
            .collect())
    }

    fn block(&self, id: &BlockId, transfers: Range<usize>) -> Result<BlockPage, ViewError> {
        self.check()?;
        let block = match id {
            BlockId::Height(height) => self.blocks.get(*height as usize),
            BlockId::Hash(hash) => self.blocks.iter().find(|b| b.row.hash == hash.as_str()),
        }
        .ok_or_else(|| ViewError::NotFound(format!("no block {id}")))?;
        let height = block.row.height;
        let count = block.transfers.len();
        let shown = clamp_range(transfers, count);
        let tip = self.tip()?.row.height;
        Ok(BlockPage {
            hash: block.row.hash.clone(),
            height,
            version: 1,
            prev_hash: if height == 0 {
                "0".repeat(64)
            } else {
                fake_hash(0xb1, u64::from(height) - 1)
            },
            next_hash: self
                .blocks
                .get(height as usize + 1)
                .map(|b| b.row.hash.clone()),
            tx_root: fake_hash(0x70, height.into()),
            state_root: fake_hash(0x57, height.into()),
            time: block.row.time,
            bits: "0x1f00ffff".to_string(),
            difficulty: block.difficulty,
            nonce: 12_345,
            extra_nonce: 7,
            chain_work: format!("0x{:x}", (u64::from(height) + 1) << 16),
            best_chain: true,
            confirmations: tip - height + 1,
            reward_address: block.row.reward_address.clone(),
            reward: block.row.reward,
            size: block.row.size,
            transfer_count: count,
            first_transfer: shown.start,
            transfers: block.transfers[shown].to_vec(),
        })
    }

    fn transaction(&self, txid: &HexHash) -> Result<TxPage, ViewError> {
        self.check()?;
        if let Some(row) = self
            .mempool
            .iter()
            .find(|r| r.transfer.txid == txid.as_str())
        {
            return Ok(TxPage {
                transfer: row.transfer.clone(),
                status: TxStatus::Pending,
                fee_rate: row.fee_rate,
            });
        }
        let (block, transfer) = self
            .find_transfer(txid.as_str())
            .ok_or_else(|| ViewError::NotFound(format!("no transaction {txid}")))?;
        Ok(TxPage {
            transfer: transfer.clone(),
            status: TxStatus::Confirmed {
                block_hash: block.row.hash.clone(),
                height: block.row.height,
                time: block.row.time,
                confirmations: self.tip()?.row.height - block.row.height + 1,
            },
            fee_rate: transfer.fee as f64 / 164.0,
        })
    }

    fn address(
        &self,
        address: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AddressPage, ViewError> {
        self.check()?;
        let address = address.trim();
        let valid = address.strip_prefix(FAKE_PREFIX).is_some_and(|rest| {
            rest.starts_with('1')
                && rest.len() > 1
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !valid {
            return Err(ViewError::BadInput(format!(
                "{address:?} is not an address of this chain ({FAKE_PREFIX}1…)"
            )));
        }
        // History positions: (height, index + 1) for transfers, (height, 0) for rewards.
        let below: Option<(u32, usize)> = cursor
            .map(|c| {
                c.split_once(':')
                    .and_then(|(h, p)| Some((h.parse().ok()?, p.parse().ok()?)))
                    .ok_or_else(|| ViewError::BadInput(format!("{c:?} is not a history cursor")))
            })
            .transpose()?;
        let tip = self.tip()?.row.height;
        let mut entries = Vec::new();
        let mut balance: u64 = 0;
        let mut nonce = 0;
        for block in &self.blocks {
            let h = block.row.height;
            if block.row.reward_address == address {
                balance = balance.saturating_add(block.row.reward);
                entries.push((h, 0, None));
            }
            for (i, t) in block.transfers.iter().enumerate() {
                if t.from == address {
                    balance = balance.saturating_sub(t.amount + t.fee);
                    nonce += 1;
                }
                if t.to == address {
                    balance = balance.saturating_add(t.amount);
                }
                if t.from == address || t.to == address {
                    entries.push((h, i + 1, Some(t)));
                }
            }
        }
        entries.reverse();
        let mut rows: Vec<_> = entries
            .into_iter()
            .filter(|(h, p, _)| below.is_none_or(|b| (*h, *p) < b))
            .take(limit + 1)
            .collect();
        let next_cursor = (rows.len() > limit).then(|| {
            let (h, p, _) = rows[limit - 1];
            format!("{h}:{p}")
        });
        rows.truncate(limit);
        let history = rows
            .into_iter()
            .map(|(h, _, t)| {
                let block = &self.blocks[h as usize];
                let common = |kind, t: Option<&TransferRow>| HistoryRow {
                    kind,
                    txid: t.map(|t| t.txid.clone()),
                    height: h,
                    block_hash: block.row.hash.clone(),
                    time: block.row.time,
                    confirmations: tip - h + 1,
                    from: t.map(|t| t.from.clone()),
                    to: t.map_or(address.to_string(), |t| t.to.clone()),
                    amount: t.map_or(block.row.reward, |t| t.amount),
                    fee: t.map_or(0, |t| t.fee),
                };
                match t {
                    None => common(HistoryKind::Reward, None),
                    Some(t) if t.from == address && t.to == address => {
                        common(HistoryKind::SelfTransfer, Some(t))
                    }
                    Some(t) if t.from == address => common(HistoryKind::Sent, Some(t)),
                    Some(t) => common(HistoryKind::Received, Some(t)),
                }
            })
            .collect();
        let pending = if cursor.is_none() {
            self.mempool
                .iter()
                .filter(|r| r.transfer.from == address || r.transfer.to == address)
                .map(|r| r.transfer.clone())
                .collect()
        } else {
            Vec::new()
        };
        Ok(AddressPage {
            address: address.to_string(),
            balance,
            nonce,
            next_nonce: nonce,
            pending,
            history,
            next_cursor,
            proof: Some(StateProofRow {
                state_root: "5a".repeat(32),
                height: self.blocks.len().saturating_sub(1) as u32,
                block_hash: "5b".repeat(32),
                depth: 14,
                checked: true,
            }),
        })
    }

    fn mempool(&self, limit: usize) -> Result<MempoolPage, ViewError> {
        self.check()?;
        Ok(MempoolPage {
            count: self.mempool.len(),
            bytes: self.mempool.iter().map(|r| r.size).sum(),
            rows: self.mempool.iter().take(limit).cloned().collect(),
        })
    }

    fn peers(&self) -> Result<PeersPage, ViewError> {
        self.check()?;
        Ok(self.peers.clone())
    }

    fn chart(&self, blocks: usize) -> Result<Vec<ChartPoint>, ViewError> {
        self.check()?;
        let start = self.blocks.len().saturating_sub(blocks);
        Ok(self.blocks[start..]
            .iter()
            .map(|b| ChartPoint {
                height: b.row.height,
                time: b.row.time,
                difficulty: b.difficulty,
                transfers: b.transfers.len(),
            })
            .collect())
    }
}
