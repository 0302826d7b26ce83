//! Drawing the series of [`super::data`] into PNG files with `plotters`'
//! bitmap backend, and the one font that text needs.
//!
//! `plotters` is built with its `ab_glyph` feature and without `ttf`, so no
//! system font library (fontconfig, freetype) is linked: [`load_font`]
//! registers DejaVu Sans, read at run time from [`FONT_PATH`], as the
//! `sans-serif` family every text style here uses.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::data::{flows_label, thousands, FlowSeries, IntervalSource, OpSeries};
use super::Result;

/// The TrueType font text is drawn with.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The Debian package that installs [`FONT_PATH`].
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";

const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1280, 720);
const LEGEND_WIDTH: u32 = 360;
const HEADER_HEIGHT: u32 = 80;

/// Line colours, in series order (the "tab10" palette, which stays apart for
/// most colour-blind readers).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Reads the TrueType font at `path` and registers it as `sans-serif` for
/// every text drawn afterwards. The first successful call wins; later calls
/// are no-ops (the font bytes live as long as the process).
pub fn load_font(path: &Path) -> Result<()> {
    static LOADED: OnceLock<()> = OnceLock::new();
    if LOADED.get().is_some() {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a TrueType font plotters can read", path.display()))?;
    let _ = LOADED.set(());
    Ok(())
}

fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// How a legend entry is drawn.
enum Swatch {
    /// A solid line with a dot: a measured series.
    LineDot(RGBColor),
    /// A dashed line: a reference level.
    Dashed(RGBColor),
    /// A translucent box: a shaded interval.
    Band(RGBAColor),
}

/// Title and subtitle across the top of `area`.
fn header(area: &DrawingArea<BitMapBackend<'_>, Shift>, title: &str, subtitle: &str) -> Result<()> {
    area.draw_text(title, &text(28), (24, 14))?;
    area.draw_text(subtitle, &text(17).color(&RGBColor(80, 80, 80)), (24, 52))?;
    Ok(())
}

/// A legend down the panel `area`, right of the chart, so it never hides data.
fn legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    entries: &[(String, Swatch)],
    notes: &[String],
) -> Result<()> {
    let x = 8;
    let mut y = 40;
    for (label, swatch) in entries {
        let mid = y + 10;
        match swatch {
            Swatch::LineDot(c) => {
                area.draw(&PathElement::new(
                    vec![(x, mid), (x + 36, mid)],
                    c.stroke_width(3),
                ))?;
                area.draw(&Circle::new((x + 18, mid), 4, c.filled()))?;
            }
            Swatch::Dashed(c) => {
                for dx in [0, 14, 28] {
                    area.draw(&PathElement::new(
                        vec![(x + dx, mid), (x + dx + 8, mid)],
                        c.stroke_width(2),
                    ))?;
                }
            }
            Swatch::Band(c) => {
                area.draw(&Rectangle::new(
                    [(x, mid - 8), (x + 36, mid + 8)],
                    c.filled(),
                ))?;
            }
        }
        area.draw_text(label, &text(17), (x + 46, y))?;
        y += 30;
    }
    y += 10;
    for note in notes {
        area.draw_text(note, &text(15).color(&RGBColor(80, 80, 80)), (x, y))?;
        y += 22;
    }
    Ok(())
}

/// The x axis of the flow-count plot: flow counts on a log2 scale, with
/// ticks and labels only at the counts measured (`1K`, `64K`, `1M`, ...).
#[derive(Clone)]
struct FlowsAxis {
    /// Measured counts, increasing, not empty.
    keys: Vec<u64>,
    /// log2 of the left and right edges (a margin around the counts).
    lo: f64,
    hi: f64,
}

impl FlowsAxis {
    fn new(keys: Vec<u64>) -> Option<Self> {
        let lo = (*keys.first()? as f64).log2();
        let hi = (*keys.last()? as f64).log2();
        let pad = if hi > lo { (hi - lo) * 0.06 } else { 1.0 };
        Some(Self {
            keys,
            lo: lo - pad,
            hi: hi + pad,
        })
    }
}

impl Ranged for FlowsAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = u64;

    fn map(&self, value: &u64, limit: (i32, i32)) -> i32 {
        let f = ((*value as f64).max(1.0).log2() - self.lo) / (self.hi - self.lo);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<u64> {
        let step = self.keys.len().div_ceil(hint.max_num_points().max(1));
        self.keys.iter().step_by(step.max(1)).copied().collect()
    }

    fn range(&self) -> Range<u64> {
        self.keys[0]..self.keys[self.keys.len() - 1]
    }
}

impl ValueFormatter<u64> for FlowsAxis {
    fn format(value: &u64) -> String {
        flows_label(*value)
    }
}

/// A chart builder on `plot` with the margins and label room every plot
/// here uses.
fn chart_on<'a, 'b>(
    plot: &'a DrawingArea<BitMapBackend<'b>, Shift>,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut b = ChartBuilder::on(plot);
    b.margin_left(16)
        .margin_right(16)
        .margin_top(16)
        .x_label_area_size(60)
        .y_label_area_size(76);
    b
}

/// Writes the flow-count plot: Mpps against flow count on a log2 axis, one
/// line per system, min–max error bars.
pub fn draw_flows(series: &[FlowSeries], path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(HEADER_HEIGHT);
    let (plot, side) = rest.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    header(
        &top,
        "Forwarding rate vs tracked flows",
        "one forwarding core, 64-byte IPv4/UDP frames, one per flow (benches/run.py, flow-count sweep)",
    )?;

    let mut counts: Vec<u64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let axis = FlowsAxis::new(counts).ok_or("no flow counts to plot")?;
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1.max))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;

    let mut chart = chart_on(&plot).build_cartesian_2d(axis, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("tracked flows (log2 scale)")
        .y_desc("forwarded (Mpps)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(text(17))
        .axis_desc_style(text(19))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    let mut entries = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let width = if s.system.starts_with("flowgate") {
            3
        } else {
            2
        };
        chart.draw_series(LineSeries::new(
            s.points.iter().map(|(n, v)| (*n, v.median)),
            c.stroke_width(width),
        ))?;
        chart.draw_series(s.points.iter().map(|(n, v)| {
            ErrorBar::new_vertical(*n, v.min, v.median, v.max, c.stroke_width(2), 12)
        }))?;
        chart.draw_series(
            s.points
                .iter()
                .map(|(n, v)| Circle::new((*n, v.median), 4, c.filled())),
        )?;
        entries.push((s.system.clone(), Swatch::LineDot(c)));
    }
    legend(
        &side,
        &entries,
        &[
            "dot: median of the windows".into(),
            "bars: slowest to fastest window".into(),
        ],
    )?;
    root.present()?;
    Ok(())
}

/// Writes an operation plot: forwarding Mpps over time while a flow
/// operation runs, the no-operation baseline as a dashed line, and the
/// operation's interval shaded when known.
pub fn draw_op(op: &OpSeries, path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(HEADER_HEIGHT);
    let (plot, side) = rest.split_horizontally(SIZE.0 - LEGEND_WIDTH);

    let name = format!("flow {}", op.kind);
    let mut subtitle = match op.flows {
        Some(n) => format!(
            "a table of {} idle flows beside a saturating load; the {} matches every idle flow",
            thousands(n),
            name
        ),
        None => format!("flowgate under load; the {name} matches every idle flow"),
    };
    if let Some(s) = op.seconds {
        subtitle.push_str(&format!("; completed in {s:.2} s"));
    }
    if let Some(st) = &op.status {
        subtitle.push_str(&format!(" ({st})"));
    }
    header(&top, &format!("Forwarding during a {name}"), &subtitle)?;

    let tmax = op
        .samples
        .iter()
        .map(|s| s.0)
        .chain(op.interval.as_ref().map(|i| i.end))
        .fold(0.0f64, f64::max);
    let tmin = op
        .samples
        .iter()
        .map(|s| s.0)
        .chain(op.interval.as_ref().map(|i| i.start))
        .fold(0.0f64, f64::min);
    let tmax = if tmax > tmin {
        tmax + (tmax - tmin) * 0.02
    } else {
        tmin + 1.0
    };
    let ymax = op
        .samples
        .iter()
        .map(|s| s.1)
        .chain(op.baseline)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.15;

    let mut chart = chart_on(&plot).build_cartesian_2d(tmin..tmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("time since sampling began (s)")
        .y_desc("forwarded (Mpps)")
        .x_label_formatter(&|x| format!("{x:.1}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(text(17))
        .axis_desc_style(text(19))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    let mut entries = Vec::new();
    let mut notes = Vec::new();
    if let Some(iv) = &op.interval {
        let band = RGBColor(255, 127, 14).mix(0.22);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(iv.start, 0.0), (iv.end, ymax)],
            band.filled(),
        )))?;
        entries.push((format!("{} running", op.kind), Swatch::Band(band)));
        notes.push(match iv.source {
            IntervalSource::StartedEnded => "shaded: started_at to ended_at".into(),
            IntervalSource::StartPlusSeconds => "shaded: start_at (nominal) + seconds".into(),
        });
    } else {
        notes.push("operation interval not recorded".into());
    }
    let blue = PALETTE[0];
    chart.draw_series(LineSeries::new(
        op.samples.iter().copied(),
        blue.stroke_width(2),
    ))?;
    chart.draw_series(op.samples.iter().map(|&p| Circle::new(p, 3, blue.filled())))?;
    entries.push(("forwarding, per sample".into(), Swatch::LineDot(blue)));
    if let Some(b) = op.baseline {
        let grey = RGBColor(60, 60, 60);
        chart.draw_series(DashedLineSeries::new(
            vec![(tmin, b), (tmax, b)],
            10,
            6,
            grey.stroke_width(2),
        ))?;
        entries.push((
            format!("baseline, no operation: {b:.2} Mpps"),
            Swatch::Dashed(grey),
        ));
        notes.push("baseline: median of ops.baseline".into());
    } else {
        notes.push("no baseline recorded".into());
    }
    legend(&side, &entries, &notes)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::data::{flow_series, op_series};
    use serde_json::json;

    /// Loads the font (`make test` installs it).
    fn font() {
        assert!(
            Path::new(FONT_PATH).is_file(),
            "{FONT_PATH} missing: install {FONT_PACKAGE}"
        );
        load_font(Path::new(FONT_PATH)).unwrap();
    }

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.len() > 1000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn renders_pngs() {
        font();
        let dir = tempfile::tempdir().unwrap();
        let r = json!({
            "flows": {
                "1024": {"testpmd io": {"median": 51.0, "min": 50.0, "max": 52.0},
                         "flowgate track": {"median": 19.0, "min": 18.0, "max": 20.0}},
                "4194304": {"testpmd io": {"median": 35.0, "min": 34.0, "max": 35.5},
                            "flowgate track": {"median": 11.0, "min": 10.5, "max": 11.2}}
            },
            "ops": {"flows": 1048576, "baseline": {"median": 12.5},
                    "flush": {"samples": [[0.1, 12.4], [1.1, 2.0], [1.6, 12.3]],
                              "start_at": 1.0, "seconds": 0.5, "status": "COMPLETED"}}
        });
        let flows = dir.path().join("flows.png");
        draw_flows(&flow_series(&r).unwrap(), &flows).unwrap();
        assert_png(&flows);
        let flush = dir.path().join("flush.png");
        draw_op(&op_series(&r, "flush").unwrap(), &flush).unwrap();
        assert_png(&flush);
    }
}
