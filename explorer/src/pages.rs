//! The pages: maud templates from view models to HTML. Every value is escaped by maud's
//! `(value)` splices (nothing here uses `PreEscaped` on data), so chain data such as memos
//! shows as text. Plain, accessible HTML: landmarks, a skip link, table headers with scope,
//! labelled forms, `<time datetime>` in UTC; the script in `static/explorer.js` only adds to
//! pages that work without it.
use crate::charts;
use crate::format;
use crate::model::{
    AddressPage, BlockPage, BlockRow, ChainInfo, ChartPoint, HistoryKind, HistoryRow, MempoolPage,
    MempoolRow, PeersPage, Summary, TransferRow, TxPage, TxStatus,
};
use maud::{html, Markup, DOCTYPE};

/// Static files are served under this path, with the crate version as a cache buster.
pub const STATIC_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    /// Home and block lists.
    Home,
    /// The mempool.
    Mempool,
    /// Peers.
    Peers,
    /// Anything else.
    None,
}

/// What every page shares: the chain, where live events come from, the search box's text.
pub struct Layout<'a> {
    /// The chain.
    pub chain: &'a ChainInfo,
    /// Base URL of the node's JSON API (live updates), if any.
    pub api_base: Option<&'a str>,
    /// Text to show in the search box.
    pub query: &'a str,
}

impl Layout<'_> {
    /// A whole page around `main`.
    pub fn page(&self, title: &str, nav: Nav, main: Markup) -> Markup {
        let chain = self.chain;
        let nav_link = |href: &str, label: &str, this: Nav| {
            html! {
                @if nav == this { a href=(href) aria-current="page" { (label) } }
                @else { a href=(href) { (label) } }
            }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (title) " · " (chain.name) " explorer" }
                    link rel="stylesheet" href=(format!("/static/explorer.css?v={STATIC_VERSION}"));
                    script defer src=(format!("/static/explorer.js?v={STATIC_VERSION}")) {}
                }
                body data-api=[self.api_base] data-decimals=(chain.decimals) data-symbol=(chain.symbol) {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { span.logo aria-hidden="true" { "▲" } " " (chain.name) }
                        nav aria-label="Sections" {
                            (nav_link("/", "Blocks", Nav::Home))
                            (nav_link("/mempool", "Mempool", Nav::Mempool))
                            (nav_link("/peers", "Peers", Nav::Peers))
                        }
                        form.search role="search" action="/search" method="get" {
                            label.visually-hidden for="q" { "Search the chain" }
                            input #q type="search" name="q" value=(self.query)
                                placeholder="Height, block hash, txid or address"
                                autocomplete="off" spellcheck="false";
                            button type="submit" { "Search" }
                        }
                        button #theme-toggle type="button" hidden aria-label="Switch between dark and light theme" { "◐" }
                    }
                    main #main { (main) }
                    footer {
                        "Cairn " (chain.node_version) " · " (chain.name) " · amounts in " (chain.symbol)
                        " · times in UTC without JavaScript"
                        span #live-status.muted hidden { }
                    }
                }
            }
        }
    }
}

/// A shortened hash linking to `href`, the full value in its title. The script adds a copy
/// button after it (buttons that cannot work without the script are not sent).
fn hash_link(href: &str, full: &str) -> Markup {
    html! { a.hash href=(href) title=(full) { code { (format::short(full)) } } }
}

fn block_link(hash: &str) -> Markup {
    hash_link(&format!("/block/{hash}"), hash)
}

fn tx_link(txid: &str) -> Markup {
    hash_link(&format!("/tx/{txid}"), txid)
}

fn address_link(address: &str) -> Markup {
    hash_link(&format!("/address/{address}"), address)
}

/// A full value (hash, address); the script adds a copy button labelled "Copy {what}".
fn full(value: &str, what: &str) -> Markup {
    html! { code.full data-copy=(what) { (value) } }
}

/// A UTC time the script turns into a local and relative one.
fn time(secs: u64) -> Markup {
    html! { time datetime=(format::iso_time(secs)) { (format::utc_time(secs)) } }
}

fn amount(units: u64, chain: &ChainInfo) -> Markup {
    html! { span.amount { (format::coins(units, chain.decimals)) " " span.unit { (chain.symbol) } } }
}

/// The home page.
pub fn home(
    layout: &Layout<'_>,
    summary: &Summary,
    blocks: &[BlockRow],
    mempool: &MempoolPage,
    chart: &[ChartPoint],
) -> Markup {
    let chain = layout.chain;
    let main = html! {
        h1 { (chain.name) }
        section aria-labelledby="tip-heading" {
            h2 #tip-heading.visually-hidden { "The chain now" }
            dl.stats {
                div { dt { "Height" } dd { a data-field="height" href=(format!("/block/{}", summary.height)) { (format::count(summary.height.into())) } } }
                div { dt { "Tip" } dd data-field="tip" { (block_link(&summary.tip_hash)) } }
                div { dt { "Last block" } dd data-field="tip-time" { (time(summary.tip_time.into())) } }
                div { dt { "Difficulty" } dd title=(format!("bits {}", summary.bits)) { (format::difficulty(summary.difficulty)) } }
                div { dt { "Hash rate (est.)" } dd title="work of the last blocks over their time span" {
                    @if summary.hash_rate > 0.0 { (format::si(summary.hash_rate, "H/s")) } @else { "–" } } }
                div { dt { "Mempool" } dd { a href="/mempool" { span data-field="mempool-count" { (format::count(summary.mempool_count as u64)) } " pending" } " · " span data-field="mempool-bytes" data-bytes=(summary.mempool_bytes) { (format::si(summary.mempool_bytes as f64, "B")) } } }
                div { dt { "Peers" } dd { a href="/peers" { (summary.peers) } @if summary.syncing { " · syncing" } } }
            }
        }
        section aria-labelledby="charts-heading" {
            h2 #charts-heading { "Last " (chart.len()) " blocks" }
            (charts::home_charts(chart))
        }
        div {
            section aria-labelledby="blocks-heading" {
                h2 #blocks-heading { "Latest blocks" }
                (blocks_table(blocks, "blocks"))
                @if let Some(last) = blocks.last() {
                    @if last.height > 0 { p { a href=(format!("/blocks?before={}", last.height)) { "Older blocks →" } } }
                }
            }
            section aria-labelledby="pending-heading" {
                h2 #pending-heading { "Pending transfers" }
                (mempool_table(&mempool.rows, chain, true))
                p { a href="/mempool" { "All " span data-field="mempool-count" { (format::count(mempool.count as u64)) } " pending transfers →" } }
            }
        }
    };
    layout.page("Home", Nav::Home, main)
}

/// A table of blocks; `live` names the stream the script adds rows from.
fn blocks_table(rows: &[BlockRow], live: &str) -> Markup {
    html! {
        table.blocks {
            thead { tr { th scope="col" { "Height" } th scope="col" { "Hash" } th scope="col" { "Mined" } th scope="col" class="num" { "Transfers" } th scope="col" { "Paid to" } } }
            tbody data-live=(live) data-max=(rows.len().max(10)) {
                @for row in rows {
                    tr {
                        td { a href=(format!("/block/{}", row.height)) { (row.height) } }
                        td { (block_link(&row.hash)) }
                        td { (time(row.time.into())) }
                        td.num { (row.transfers) }
                        td { (address_link(&row.reward_address)) }
                    }
                }
                @if rows.is_empty() { tr.empty { td colspan="5" { "No blocks." } } }
            }
        }
    }
}

/// A list of best-chain blocks below a height.
pub fn blocks_list(layout: &Layout<'_>, rows: &[BlockRow]) -> Markup {
    let main = html! {
        h1 { "Blocks" }
        @if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            p.muted { "Heights " (first.height) " down to " (last.height) "." }
        }
        (blocks_table(rows, "none"))
        nav.pager aria-label="Pages" {
            a href="/" { "← Latest" }
            @if let Some(last) = rows.last() {
                @if last.height > 0 { a href=(format!("/blocks?before={}", last.height)) { "Older →" } }
            }
        }
    };
    layout.page("Blocks", Nav::Home, main)
}

fn mempool_table(rows: &[MempoolRow], chain: &ChainInfo, live: bool) -> Markup {
    html! {
        table.mempool {
            thead { tr {
                th scope="col" { "Transaction" } th scope="col" { "From" } th scope="col" { "To" }
                th scope="col" class="num" { "Amount" } th scope="col" class="num" { abbr title="base units per byte" { "Fee rate" } }
                th scope="col" { "Seen" }
            } }
            tbody data-live=[live.then_some("mempool")] data-max=(rows.len().max(10)) {
                @for row in rows {
                    tr {
                        td { (tx_link(&row.transfer.txid)) }
                        td { (address_link(&row.transfer.from)) }
                        td { (address_link(&row.transfer.to)) }
                        td.num { (amount(row.transfer.amount, chain)) }
                        td.num { (format::fee_rate(row.fee_rate)) }
                        td { (time(row.added)) }
                    }
                }
                @if rows.is_empty() { tr.empty { td colspan="6" { "The mempool is empty." } } }
            }
        }
    }
}

fn transfers_table(rows: &[TransferRow], first_index: usize, chain: &ChainInfo) -> Markup {
    html! {
        table.transfers {
            thead { tr {
                th scope="col" class="num" { "#" } th scope="col" { "Transaction" } th scope="col" { "From" }
                th scope="col" { "To" } th scope="col" class="num" { "Amount" } th scope="col" class="num" { "Fee" }
            } }
            tbody {
                @for (i, row) in rows.iter().enumerate() {
                    tr {
                        td.num { (first_index + i + 1) }
                        td { (tx_link(&row.txid)) }
                        td { (address_link(&row.from)) }
                        td { (address_link(&row.to)) }
                        td.num { (amount(row.amount, chain)) }
                        td.num { (amount(row.fee, chain)) }
                    }
                }
                @if rows.is_empty() { tr.empty { td colspan="6" { "No transfers." } } }
            }
        }
    }
}

/// The block page, showing `page` (1-based) of its transfers, `per_page` a page.
pub fn block(layout: &Layout<'_>, block: &BlockPage, page: usize, per_page: usize) -> Markup {
    let chain = layout.chain;
    let pages = block.transfer_count.div_ceil(per_page).max(1);
    let shown_to = block.first_transfer + block.transfers.len();
    let page_link = |p: usize| format!("/block/{}?page={p}", block.hash);
    let main = html! {
        h1 { "Block " (format::count(block.height.into())) }
        @if !block.best_chain { p.notice role="status" { "This block is not on the best chain (a side branch): its transfers are not confirmed." } }
        dl.fields {
            dt { "Hash" } dd { (full(&block.hash, "block hash")) }
            dt { "Status" } dd {
                @if block.best_chain { "On the best chain, " (format::count(block.confirmations.into())) " confirmation" @if block.confirmations != 1 { "s" } }
                @else { "Side branch" }
            }
            dt { "Mined" } dd { (time(block.time.into())) }
            dt { "Parent" } dd {
                @if block.height == 0 { "none (genesis)" }
                @else { a rel="prev" href=(format!("/block/{}", block.prev_hash)) { "Block " (block.height - 1) } " " (block_link(&block.prev_hash)) }
            }
            dt { "Child" } dd {
                @match &block.next_hash {
                    Some(next) => { a rel="next" href=(format!("/block/{next}")) { "Block " (block.height + 1) } " " (block_link(next)) }
                    None => { @if block.best_chain { "none yet (this is the tip)" } @else { "not on the best chain" } }
                }
            }
            dt { "Reward" } dd { (amount(block.reward, chain)) " to " (address_link(&block.reward_address)) }
            dt { "Transfers" } dd { (format::count(block.transfer_count as u64)) }
            dt { "Size" } dd { (format::count(block.size as u64)) " bytes" }
            dt { "Difficulty" } dd { (format::difficulty(block.difficulty)) " (bits " code { (block.bits) } ")" }
            dt { "Version" } dd { (block.version) }
            dt { "Nonce" } dd { (block.nonce) " (extra nonce " (block.extra_nonce) ")" }
            dt { "Transactions root" } dd { (full(&block.tx_root, "transactions root")) }
            dt { "State root" } dd { (full(&block.state_root, "state root")) }
            dt { "Chain work" } dd { code.full { (block.chain_work) } }
        }
        h2 #transfers { "Transfers" }
        @if block.transfer_count > 0 {
            p.muted { "Showing " (block.first_transfer + 1) "–" (shown_to) " of " (format::count(block.transfer_count as u64)) "." }
        }
        (transfers_table(&block.transfers, block.first_transfer, chain))
        @if pages > 1 {
            nav.pager aria-label="Transfer pages" {
                @if page > 1 { a rel="prev" href=(page_link(page - 1)) { "← Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a rel="next" href=(page_link(page + 1)) { "Next →" } }
            }
        }
    };
    layout.page(&format!("Block {}", block.height), Nav::Home, main)
}

/// The transaction page.
pub fn transaction(layout: &Layout<'_>, tx: &TxPage) -> Markup {
    let chain = layout.chain;
    let t = &tx.transfer;
    let main = html! {
        h1 { "Transaction" }
        dl.fields {
            dt { "Id" } dd { (full(&t.txid, "transaction id")) }
            dt { "Status" } dd {
                @match &tx.status {
                    TxStatus::Pending => { strong.pending { "Pending" } " (in the mempool, not yet in a block)" }
                    TxStatus::Confirmed { confirmations, .. } => {
                        strong.confirmed { "Confirmed" } ", " (format::count((*confirmations).into())) " confirmation" @if *confirmations != 1 { "s" }
                    }
                }
            }
            @if let TxStatus::Confirmed { block_hash, height, time: when, .. } = &tx.status {
                dt { "Block" } dd { a href=(format!("/block/{block_hash}")) { "Block " (height) } " " (block_link(block_hash)) }
                dt { "Time" } dd { (time((*when).into())) }
            }
            dt { "From" } dd { a href=(format!("/address/{}", t.from)) { (full(&t.from, "sender address")) } }
            dt { "To" } dd { a href=(format!("/address/{}", t.to)) { (full(&t.to, "recipient address")) } }
            dt { "Amount" } dd { (amount(t.amount, chain)) }
            dt { "Fee" } dd { (amount(t.fee, chain)) " (" (format::fee_rate(tx.fee_rate)) " units per byte)" }
            dt { "Nonce" } dd { (t.nonce) }
            dt { "Memo" } dd {
                @if t.memo.is_empty() { span.muted { "none" } }
                @else { pre.memo { (t.memo) } }
            }
        }
    };
    layout.page("Transaction", Nav::None, main)
}

/// The address page; `first_page` says whether this is the newest page of its history.
pub fn address(layout: &Layout<'_>, page: &AddressPage, first_page: bool) -> Markup {
    let chain = layout.chain;
    let main = html! {
        h1 { "Address" }
        dl.fields {
            dt { "Address" } dd { (full(&page.address, "address")) }
            dt { "Balance" } dd { (amount(page.balance, chain)) }
            dt { "Nonce" } dd { (page.nonce) @if page.next_nonce != page.nonce { " (next transfer: " (page.next_nonce) ")" } }
            dt { "State proof" } dd.proof {
                @if let Some(proof) = &page.proof {
                    @if proof.checked { span.good { "checked" } } @else { span.bad { "does not check" } }
                    " against state root " code title=(proof.state_root) { (format::short(&proof.state_root)) }
                    " of block " (proof.height) " " (block_link(&proof.block_hash))
                    " (a path of " (proof.depth) " levels; "
                    a href=(format!("/api/v1/accounts/{}/proof", page.address)) { "the proof" } ")"
                } @else { span.muted { "none" } }
            }
        }
        @if first_page {
            h2 { "Pending" }
            @if page.pending.is_empty() { p.muted { "No pending transfers." } }
            @else { (transfers_table(&page.pending, 0, chain)) }
        }
        h2 { "History" }
        table.history {
            thead { tr {
                th scope="col" { "Block" } th scope="col" { "Time" } th scope="col" { "Kind" }
                th scope="col" { "Transaction" } th scope="col" { "Counterparty" } th scope="col" class="num" { "Amount" }
            } }
            tbody {
                @for row in &page.history { (history_row(row, &page.address, chain)) }
                @if page.history.is_empty() { tr.empty { td colspan="6" { "No confirmed transfers." } } }
            }
        }
        nav.pager aria-label="History pages" {
            @if !first_page { a href=(format!("/address/{}", page.address)) { "← Newest" } }
            @if let Some(cursor) = &page.next_cursor { a rel="next" href=(format!("/address/{}?cursor={cursor}", page.address)) { "Older →" } }
        }
    };
    layout.page("Address", Nav::None, main)
}

fn history_row(row: &HistoryRow, address: &str, chain: &ChainInfo) -> Markup {
    let (sign, counterparty) = match row.kind {
        HistoryKind::Sent => ("−", Some(row.to.as_str())),
        HistoryKind::Received => ("+", row.from.as_deref()),
        HistoryKind::SelfTransfer => ("", Some(address)),
        HistoryKind::Reward => ("+", None),
    };
    html! {
        tr {
            td { a href=(format!("/block/{}", row.block_hash)) { (row.height) } }
            td { (time(row.time.into())) }
            td { (row.kind.as_str()) }
            td { @match &row.txid { Some(txid) => { (tx_link(txid)) }, None => { span.muted { "—" } } } }
            td { @match counterparty { Some(other) => { (address_link(other)) }, None => { span.muted { "—" } } } }
            td.num { (sign) (amount(row.amount, chain))
                @if row.kind == HistoryKind::Sent && row.fee > 0 { br; span.muted { "fee " (format::coins(row.fee, chain.decimals)) } } }
        }
    }
}

/// The mempool page.
pub fn mempool(layout: &Layout<'_>, page: &MempoolPage) -> Markup {
    let main = html! {
        h1 { "Mempool" }
        p { span data-field="mempool-count" { (format::count(page.count as u64)) } " pending transfers, "
            (format::si(page.bytes as f64, "B")) ", best fee rate first"
            @if page.rows.len() < page.count { " (the first " (page.rows.len()) " shown)" } "." }
        (mempool_table(&page.rows, layout.chain, true))
    };
    layout.page("Mempool", Nav::Mempool, main)
}

/// The peers page.
pub fn peers(layout: &Layout<'_>, page: &PeersPage) -> Markup {
    let main = html! {
        h1 { "Peers" }
        dl.fields {
            dt { "This node" } dd { @if page.peer_id.is_empty() { span.muted { "not on the network yet" } } @else { (full(&page.peer_id, "peer id")) } }
            dt { "Listening on" } dd {
                @if page.listen_addresses.is_empty() { span.muted { "no address yet" } }
                ul.plain { @for address in &page.listen_addresses { li { code.full { (address) } } } }
            }
        }
        h2 { "Connected (" (page.peers.len()) ")" }
        table.peers {
            thead { tr { th scope="col" { "Peer" } th scope="col" { "Address" } th scope="col" { "Direction" } th scope="col" { "Agent" } th scope="col" class="num" { "Height" } th scope="col" class="num" { "Score" } } }
            tbody {
                @for peer in &page.peers {
                    tr {
                        td { code title=(peer.peer_id) { (format::short(&peer.peer_id)) } }
                        td { code { (peer.address) } }
                        td { (peer.direction) }
                        td { (peer.agent.as_deref().unwrap_or("–")) }
                        td.num { @match peer.height { Some(h) => { a href=(format!("/block/{h}")) { (h) } }, None => { "–" } } }
                        td.num { (peer.score) }
                    }
                }
                @if page.peers.is_empty() { tr.empty { td colspan="6" { "No peers connected." } } }
            }
        }
        h2 { "Banned (" (page.bans.len()) ")" }
        @if page.bans.is_empty() { p.muted { "No bans." } }
        @else {
            table.bans {
                thead { tr { th scope="col" { "Peer" } th scope="col" { "Until" } th scope="col" { "Reason" } } }
                tbody { @for ban in &page.bans { tr { td { code title=(ban.peer_id) { (format::short(&ban.peer_id)) } } td { (time(ban.until)) } td { (ban.reason) } } } }
            }
        }
    };
    layout.page("Peers", Nav::Peers, main)
}

/// A page that says something went wrong or matched nothing.
pub fn message(layout: &Layout<'_>, title: &str, heading: &str, text: &str) -> Markup {
    let main = html! {
        h1 { (heading) }
        p.message role="alert" { (text) }
        p { "Search takes a block height, a block hash, a transaction id (64 hex digits) or an address starting with "
            code { (layout.chain.address_prefix) "1" } "." }
        p { a href="/" { "← Back to the latest blocks" } }
    };
    layout.page(title, Nav::None, main)
}
