//! Inline SVG charts of recent blocks (intervals, difficulty, transfers per block), drawn on
//! the server: no script and no chart library. Each chart is an `<svg role="img">` with a
//! title and a caption that says the same in words (range, median, last value), so it reads
//! without sight too. Colours come from the stylesheet (classes), as the page's CSP allows.
use crate::format;
use crate::model::ChartPoint;
use maud::{html, Markup};
use std::fmt::Write;

/// The drawing area of every chart, in SVG user units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 140.0;
/// Room kept above and below the data.
const MARGIN: f64 = 8.0;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A polyline.
    Line,
    /// One bar per point.
    Bars,
}

/// One chart: a series of `(height, value)` pairs, oldest first.
pub struct Series<'a> {
    /// Element id (for `aria-labelledby`).
    pub id: &'a str,
    /// Heading.
    pub title: &'a str,
    /// The points.
    pub points: Vec<(u32, f64)>,
    /// How to draw them.
    pub style: Style,
    /// How a value reads.
    pub format: fn(f64) -> String,
}

/// The three charts of the home page from `points` (oldest first).
pub fn home_charts(points: &[ChartPoint]) -> Markup {
    // Genesis is made, not mined: its time says nothing of the block interval.
    let intervals: Vec<(u32, f64)> = points
        .windows(2)
        .filter(|w| w[0].height > 0)
        .map(|w| (w[1].height, f64::from(w[1].time) - f64::from(w[0].time)))
        .collect();
    let difficulty: Vec<(u32, f64)> = points.iter().map(|p| (p.height, p.difficulty)).collect();
    let transfers: Vec<(u32, f64)> = points
        .iter()
        .map(|p| (p.height, p.transfers as f64))
        .collect();
    html! {
        div.charts {
            (chart(&Series { id: "chart-intervals", title: "Block interval", points: intervals,
                style: Style::Line, format: |v| format::duration(v as i64) }))
            (chart(&Series { id: "chart-difficulty", title: "Difficulty", points: difficulty,
                style: Style::Line, format: format::difficulty }))
            (chart(&Series { id: "chart-transfers", title: "Transfers per block", points: transfers,
                style: Style::Bars, format: |v| format::count(v as u64) }))
        }
    }
}

/// One chart as a `<figure>`.
pub fn chart(series: &Series<'_>) -> Markup {
    let title_id = format!("{}-title", series.id);
    let points = &series.points;
    let Some(stats) = Stats::of(points) else {
        return html! {
            figure.chart id=(series.id) {
                figcaption { strong { (series.title) } " — not enough blocks yet" }
            }
        };
    };
    let summary = format!(
        "{}: from {} to {}, median {}, last {}, over blocks {} to {}",
        series.title,
        (series.format)(stats.min),
        (series.format)(stats.max),
        (series.format)(stats.median),
        (series.format)(stats.last),
        stats.first_height,
        stats.last_height,
    );
    // The value axis starts at zero for bars (their length is the value), and spans the data
    // for lines (so small changes of difficulty show).
    let low = match series.style {
        Style::Bars => stats.min.min(0.0),
        Style::Line => stats.min,
    };
    let high = if stats.max > low {
        stats.max
    } else {
        low + 1.0
    };
    let y = |value: f64| {
        let share = (value - low) / (high - low);
        HEIGHT - MARGIN - share * (HEIGHT - 2.0 * MARGIN)
    };
    let step = if points.len() > 1 {
        WIDTH / (points.len() - 1) as f64
    } else {
        WIDTH
    };
    let mut path = String::new();
    match series.style {
        Style::Line => {
            for (i, (_, value)) in points.iter().enumerate() {
                let _ = write!(path, "{:.1},{:.1} ", i as f64 * step, y(*value));
            }
        }
        Style::Bars => {
            // One path of rectangles: a few hundred bars in one element.
            let width = (WIDTH / points.len() as f64).max(1.0);
            for (i, (_, value)) in points.iter().enumerate() {
                let x = i as f64 * WIDTH / points.len() as f64;
                let top = y(*value);
                let _ = write!(
                    path,
                    "M{x:.1} {:.1}V{top:.1}h{:.2}V{:.1}Z",
                    HEIGHT - MARGIN,
                    (width * 0.8).max(0.5),
                    HEIGHT - MARGIN
                );
            }
        }
    }
    html! {
        figure.chart id=(series.id) {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) preserveAspectRatio="none"
                role="img" aria-labelledby=(title_id) {
                title id=(title_id) { (summary) }
                line.grid x1="0" x2=(WIDTH) y1=(y(high)) y2=(y(high)) {}
                line.grid x1="0" x2=(WIDTH) y1=(y((high + low) / 2.0)) y2=(y((high + low) / 2.0)) {}
                line.grid x1="0" x2=(WIDTH) y1=(y(low)) y2=(y(low)) {}
                @match series.style {
                    Style::Line => { polyline.series points=(path.trim_end()) {} }
                    Style::Bars => { path.series.bars d=(path) {} }
                }
            }
            figcaption {
                strong { (series.title) }
                " · last " (( series.format)(stats.last))
                " · median " ((series.format)(stats.median))
                " · range " ((series.format)(stats.min)) " – " ((series.format)(stats.max))
                span.muted { " · blocks " (stats.first_height) "–" (stats.last_height) }
            }
        }
    }
}

/// What a caption says of a series.
struct Stats {
    min: f64,
    max: f64,
    median: f64,
    last: f64,
    first_height: u32,
    last_height: u32,
}

impl Stats {
    fn of(points: &[(u32, f64)]) -> Option<Stats> {
        let (first_height, _) = *points.first()?;
        let (last_height, last) = *points.last()?;
        let mut values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
        values.sort_by(f64::total_cmp);
        Some(Stats {
            min: values[0],
            max: values[values.len() - 1],
            median: values[values.len() / 2],
            last,
            first_height,
            last_height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: u32) -> Vec<ChartPoint> {
        (0..n)
            .map(|i| ChartPoint {
                height: i,
                time: 1_000 + 10 * i,
                difficulty: 1.0 + f64::from(i),
                transfers: (i % 3) as usize,
            })
            .collect()
    }

    #[test]
    fn charts_say_in_words_what_they_draw() {
        let html = home_charts(&points(5)).into_string();
        assert!(html.contains("Block interval: from 10 s to 10 s"), "{html}");
        assert!(html.contains("Difficulty: from 1 to 5"), "{html}");
        assert!(html.contains("<polyline"), "{html}");
        assert!(html.contains("class=\"series bars\""), "{html}");
    }

    #[test]
    fn too_few_blocks_is_said_not_drawn() {
        let html = home_charts(&points(1)).into_string();
        assert!(html.contains("Block interval</strong> — not enough blocks yet"));
        let html = home_charts(&[]).into_string();
        assert!(!html.contains("<svg"));
    }
}
