//! Explorer rendering: a whole request through the explorer's router (parse, view calls,
//! templates, headers) over the in-memory fake view, for the home page (300 blocks of charts,
//! 15 latest blocks, 10 pending transfers) and a 2,000-transfer block (its first page of 100,
//! as the explorer serves it); and the template alone for all 2,000 transfers on one page.
//!
//! `cargo bench --bench explorer`; the numbers are in docs/BENCHMARKS.md.
use axum::body::Body;
use axum::http::Request;
use cairn_explorer::fake::FakeView;
use cairn_explorer::pages::{self, Layout};
use cairn_explorer::{router, BlockId, ExplorerConfig, ExplorerView};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use std::hint::black_box;
use std::sync::Arc;
use tower::ServiceExt;

/// 301 blocks: block 100 holds 2,000 transfers, the others up to 40.
fn view() -> FakeView {
    FakeView::new(301, |h| if h == 100 { 2000 } else { (h % 41) as usize })
}

fn bench_explorer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let view: Arc<dyn ExplorerView> = Arc::new(view());
    let app = router(Arc::clone(&view), ExplorerConfig::default());
    let mut group = c.benchmark_group("explorer");
    for (name, uri) in [("home", "/"), ("block_2000_transfers_page_1", "/block/100")] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = app
                        .clone()
                        .oneshot(Request::get(uri).body(Body::empty()).expect("a request"))
                        .await
                        .expect("an answer");
                    assert!(response.status().is_success());
                    black_box(
                        response
                            .into_body()
                            .collect()
                            .await
                            .expect("a body")
                            .to_bytes(),
                    )
                })
            })
        });
    }
    let chain = view.chain();
    let block = view
        .block(&BlockId::Height(100), 0..2000)
        .expect("block 100");
    let layout = Layout {
        chain: &chain,
        api_base: Some("/api/v1"),
        query: "",
    };
    group.bench_function("block_2000_transfers_one_page_template", |b| {
        b.iter(|| black_box(pages::block(&layout, &block, 1, 2000).into_string().len()))
    });
    group.finish();
}

criterion_group!(benches, bench_explorer);
criterion_main!(benches);
