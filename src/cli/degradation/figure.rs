//! The paper's Fig. 1/6 from the runs' logs: training error (dashed) and test error (solid)
//! against iterations, plain nets on the left, ResNets on the right, one colour per depth.
//!
//! Text is drawn with `plotters`' ab_glyph renderer and DejaVu Sans bundled in the binary
//! (assets/fonts): a bare machine has no system fonts to find, and the SVG names the family only.

use super::runlog::RunLog;
use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

/// Pixels of the whole figure (two panels side by side).
const SIZE: (u32, u32) = (1200, 480);

const FONT: &str = "sans-serif";

/// Writes the figure as PNG and as SVG.
pub fn draw(runs: &[RunLog], png: &Path, svg: &Path) -> Result<()> {
    register_font()?;
    let (w, h) = SIZE;
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        paint(&root, runs).map_err(|e| anyhow!("cannot draw the figure: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw the figure: {e}"))?;
    }
    image::RgbImage::from_raw(w, h, pixels)
        .expect("the buffer has the figure's size")
        .save(png)
        .with_context(|| format!("cannot write {}", png.display()))?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        paint(&root, runs).map_err(|e| anyhow!("cannot draw the figure: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw the figure: {e}"))?;
    }
    std::fs::write(svg, text).with_context(|| format!("cannot write {}", svg.display()))
}

fn register_font() -> Result<()> {
    static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| anyhow!("the bundled font DejaVuSans.ttf does not load"))
}

type Drawn = std::result::Result<(), Box<dyn Error>>;

fn paint<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[RunLog]) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let x_max = runs.iter().map(|r| r.steps).max().unwrap_or(1).max(1) as f64;
    let y_max = y_limit(runs);
    let mut depths: Vec<usize> = runs.iter().map(|r| r.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    for (area, plain) in [(left, true), (right, false)] {
        let title = if plain { "plain networks" } else { "ResNets" };
        let mut chart = ChartBuilder::on(&area)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(58)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_desc("iterations")
            .y_desc("error (%)")
            .x_label_formatter(&|x| iterations_label(*x, x_max))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()?;
        for run in runs.iter().filter(|r| r.plain == plain) {
            let rank = depths.iter().position(|&d| d == run.depth).unwrap_or(0);
            let colour = colour_of(run.depth, rank);
            let percent = |pts: &[(u64, f64)]| -> Vec<(f64, f64)> {
                pts.iter().map(|&(s, e)| (s as f64, 100.0 * e)).collect()
            };
            for piece in clip(&percent(&run.train), y_max) {
                chart.draw_series(DashedLineSeries::new(piece, 7, 5, colour.stroke_width(1)))?;
            }
            let mut labelled = false;
            for piece in clip(&percent(&run.test), y_max) {
                let drawn = chart.draw_series(LineSeries::new(piece, colour.stroke_width(2)))?;
                if !labelled {
                    labelled = true;
                    drawn.label(label(run)).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
                    });
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font((FONT, 15))
            .draw()?;
    }
    // What the two line styles mean, as the paper's caption says it.
    let key = "dashed: training error    solid: test error";
    root.draw(&Text::new(
        key,
        (SIZE.0 as i32 / 2 - 160, SIZE.1 as i32 - 18),
        (FONT, 14).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    Ok(())
}

/// "plain-20" or "ResNet-20", as the paper's legends read.
fn label(run: &RunLog) -> String {
    if run.plain {
        format!("plain-{}", run.depth)
    } else {
        format!("ResNet-{}", run.depth)
    }
}

/// The paper's colours where its figures have the depth (Fig. 6: 20 yellow, 32 blue, 44 green,
/// 56 red, 110 black), others by rank.
fn colour_of(depth: usize, rank: usize) -> RGBColor {
    match depth {
        20 => RGBColor(230, 170, 0),
        32 => RGBColor(0, 114, 189),
        44 => RGBColor(60, 160, 60),
        56 => RGBColor(210, 40, 30),
        110 => RGBColor(0, 0, 0),
        _ => [
            RGBColor(230, 170, 0),
            RGBColor(0, 114, 189),
            RGBColor(60, 160, 60),
            RGBColor(210, 40, 30),
            RGBColor(126, 47, 142),
            RGBColor(0, 0, 0),
        ][rank % 6],
    }
}

/// The top of the error axis: room for the final errors (x 2.5, as the paper's 0-20% holds
/// final errors of 7-9%), in steps of 5%, at most 100%; the first iterations' high errors are
/// cut off at the top, as in the paper.
fn y_limit(runs: &[RunLog]) -> f64 {
    let worst = runs
        .iter()
        .flat_map(|r| [r.final_train(), r.final_test()])
        .flatten()
        .fold(0.0f64, f64::max);
    ((250.0 * worst / 5.0).ceil() * 5.0).clamp(5.0, 100.0)
}

/// Tick labels: 20k for 20,000 once the axis reaches 10,000.
fn iterations_label(x: f64, x_max: f64) -> String {
    if x_max >= 10_000.0 {
        format!("{}k", (x / 1000.0).round())
    } else {
        format!("{}", x.round())
    }
}

/// The parts of a polyline below `top`, with the crossing points added: plotters draws lines
/// past the plot area otherwise.
fn clip(points: &[(f64, f64)], top: f64) -> Vec<Vec<(f64, f64)>> {
    let mut pieces = Vec::new();
    let mut piece: Vec<(f64, f64)> = Vec::new();
    for (i, &(x, y)) in points.iter().enumerate() {
        if let Some(&(px, py)) = i.checked_sub(1).map(|j| &points[j])
            && (py > top) != (y > top)
        {
            let cross = (px + (x - px) * (top - py) / (y - py), top);
            piece.push(cross);
            if y > top {
                pieces.push(std::mem::take(&mut piece));
            }
        }
        if y <= top {
            piece.push((x, y));
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_lines_at_the_top_of_the_axis() {
        let pts = [(0.0, 90.0), (10.0, 10.0), (20.0, 5.0)];
        assert_eq!(
            clip(&pts, 50.0),
            vec![vec![(5.0, 50.0), (10.0, 10.0), (20.0, 5.0)]]
        );
        let up_down = [(0.0, 10.0), (10.0, 90.0), (20.0, 10.0)];
        assert_eq!(
            clip(&up_down, 50.0),
            vec![
                vec![(0.0, 10.0), (5.0, 50.0)],
                vec![(15.0, 50.0), (20.0, 10.0)]
            ]
        );
        assert!(clip(&[(0.0, 90.0)], 50.0).is_empty());
    }
}
