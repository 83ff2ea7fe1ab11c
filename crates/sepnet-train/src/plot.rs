//! PNG charts drawn with plotters in memory and written atomically: a run's loss and accuracy
//! curves, and `compare`'s overlays. The font (DejaVu Sans) is embedded; no system font
//! library is needed.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::TrainError;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;
/// Series colours, in order (Tableau 10).
const COLORS: [RGBColor; 10] = [
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

/// One named series of points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn joined in order (or as labelled dots in a [`Kind::Scatter`]).
    pub points: Vec<(f64, f64)>,
    /// A variant of the series at this index (a model and the same model distilled): drawn in
    /// its colour with hollow marks, so the pair reads as one model at a glance.
    pub variant_of: Option<usize>,
}

/// Each series' colour and whether its marks are hollow: a colour per series that is not a
/// variant, its original's for a variant.
fn styles(series: &[Series]) -> Vec<(RGBColor, bool)> {
    let mut own = 0;
    let mut colors: Vec<RGBColor> = Vec::with_capacity(series.len());
    for s in series {
        let color = match s.variant_of.and_then(|k| colors.get(k)) {
            Some(&original) => original,
            None => {
                own += 1;
                COLORS[(own - 1) % COLORS.len()]
            }
        };
        colors.push(color);
    }
    let hollow = series.iter().map(|s| s.variant_of.is_some());
    colors.into_iter().zip(hollow).collect()
}

/// A point's mark: filled, or a ring for a variant.
fn mark<C>(at: C, size: u32, (color, hollow): (RGBColor, bool)) -> Circle<C, u32> {
    let style = if hollow {
        color.stroke_width(2)
    } else {
        color.filled()
    };
    Circle::new(at, size, style)
}

/// What kind of chart to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Values per epoch: x is a whole epoch number, each series a line with its points marked.
    Epochs,
    /// One labelled point per series on a logarithmic x axis (e.g. accuracy against MACs).
    Scatter,
}

/// A chart to draw.
#[derive(Clone, Copy)]
pub struct Chart<'a> {
    /// Title at the top.
    pub title: &'a str,
    /// x-axis label.
    pub x_label: &'a str,
    /// y-axis label.
    pub y_label: &'a str,
    /// Lines per epoch, or labelled points on a log axis.
    pub kind: Kind,
    /// Format y values as percentages.
    pub percent: bool,
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are DejaVu Sans from the `dejavu` crate: a valid TrueType font.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// `(min, max)` of the values, widened so that a flat series still gets a visible range.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(1e-3) * 0.01);
    (lo - pad, hi + pad)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn error(e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("drawing a chart failed: {e}"))
}

/// Draws `series` as a PNG and returns its bytes.
pub fn render(chart: &Chart, series: &[Series]) -> Result<Vec<u8>, TrainError> {
    register_fonts();
    let height = HEIGHT + legend_height(series.len());
    let mut pixels = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(error)?;
        // The legend gets a strip of its own under the plot: it never covers a line or a dot.
        let (plot, strip) = root.split_vertically(HEIGHT);
        let entries = match chart.kind {
            Kind::Epochs => draw_epochs(&plot, chart, series)?,
            Kind::Scatter => draw_scatter(&plot, chart, series)?,
        };
        draw_legend(&strip, &entries)?;
        root.present().map_err(error)?;
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(WIDTH, height, pixels)
        .expect("buffer sized for the image")
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(error)?;
    Ok(png)
}

/// One line of a legend: the series' colour, its mark (a line or a dot, hollow for a
/// variant) and its text.
struct Entry {
    style: (RGBColor, bool),
    dot: bool,
    text: String,
}

/// Pixels of legend strip for `n` series.
fn legend_height(n: usize) -> u32 {
    if n == 0 { 0 } else { 10 + 22 * n as u32 }
}

/// The legend, one entry a line, aligned with the plot's left edge.
fn draw_legend(strip: &Area, entries: &[Entry]) -> Result<(), TrainError> {
    let x = 100;
    for (i, entry) in entries.iter().enumerate() {
        let y = 14 + 22 * i as i32;
        let color = entry.style.0;
        if !entry.dot {
            let line = PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3));
            strip.draw(&line).map_err(error)?;
        }
        if entry.dot || entry.style.1 {
            strip
                .draw(&mark((x + 10, y), 5, entry.style))
                .map_err(error)?;
        }
        let text = Text::new(entry.text.clone(), (x + 30, y - 8), ("sans-serif", 15));
        strip.draw(&text).map_err(error)?;
    }
    Ok(())
}

/// Tick labels with just enough decimals that neighbouring ticks (about `range / 8` apart)
/// never read the same.
fn y_formatter(percent: bool, (lo, hi): (f64, f64)) -> impl Fn(&f64) -> String {
    let scale = if percent { 100.0 } else { 1.0 };
    let step = ((hi - lo) * scale / 8.0).max(1e-9);
    let decimals = (-step.log10()).ceil().max(0.0) as usize + 1;
    move |v: &f64| {
        if percent {
            format!("{:.*}%", decimals.saturating_sub(1), 100.0 * v)
        } else {
            format!("{v:.decimals$}")
        }
    }
}

/// The title, margins and axis-label room every chart shares.
fn frame<'a, 'b>(root: &'a Area<'b>, chart: &Chart) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(chart.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72);
    builder
}

/// Curves over epochs, each point marked; the value at the end is in the legend, and beside
/// the last point when there are two curves or fewer.
fn draw_epochs(root: &Area, chart: &Chart, series: &[Series]) -> Result<Vec<Entry>, TrainError> {
    let last_epoch = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let (lo, hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut plot = frame(root, chart)
        .build_cartesian_2d(0.5..last_epoch + 0.5, lo..hi)
        .map_err(error)?;
    let whole = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 && *v >= 1.0 {
            format!("{}", v.round())
        } else {
            String::new()
        }
    };
    plot.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .x_labels((last_epoch as usize).min(12) + 1)
        .x_label_formatter(&whole)
        .y_labels(8)
        .y_label_formatter(&y_formatter(chart.percent, (lo, hi)))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(error)?;
    let top_end = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.1))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut entries = Vec::new();
    for (s, style) in series.iter().zip(styles(series)) {
        let color = style.0;
        let last = s.points.last().copied();
        plot.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(error)?;
        plot.draw_series(s.points.iter().map(|&p| mark(p, 4, style)))
            .map_err(error)?;
        if let (Some((x, y)), true) = (last, series.len() <= 2) {
            let style = ("sans-serif", 14).into_font().color(&color);
            let offset = if y >= top_end { (-60, -24) } else { (-60, 10) };
            let text = Text::new(y_text(chart.percent, y), offset, style);
            plot.draw_series([EmptyElement::at((x, y)) + text])
                .map_err(error)?;
        }
        let text = match last {
            Some((_, y)) => format!("{}: {} at the end", s.name, y_text(chart.percent, y)),
            None => s.name.clone(),
        };
        entries.push(Entry {
            style,
            dot: false,
            text,
        });
    }
    Ok(entries)
}

/// The x axis of a scatter: logarithmic when the values span 20× or more (then it shows
/// several decades), linear otherwise (a log axis over a narrow span shows one tick, or none
/// near the data).
fn scatter_x_range(series: &[Series]) -> (f64, f64, bool) {
    let xs = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| *x > 0.0)
    };
    let lo = xs().fold(f64::INFINITY, f64::min).min(1e12);
    let hi = xs().fold(0.0, f64::max).max(lo);
    if hi >= 20.0 * lo {
        return (lo / 2.0, hi * 2.0, true);
    }
    let pad = ((hi - lo) * 0.15).max(hi * 0.05);
    ((lo - pad).max(0.0), hi + pad, false)
}

/// One labelled dot per series at (MACs, accuracy); the legend says each dot's numbers. A log
/// axis is drawn as log10 of the values on a linear one, labelled with the values themselves.
fn draw_scatter(root: &Area, chart: &Chart, series: &[Series]) -> Result<Vec<Entry>, TrainError> {
    let (x_lo, x_hi, log) = scatter_x_range(series);
    let to_axis = |x: f64| if log { x.max(1e-12).log10() } else { x };
    let from_axis = move |v: f64| if log { 10f64.powf(v) } else { v };
    let (lo, hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let x_label = format!("{}{}", chart.x_label, if log { " (log scale)" } else { "" });
    let mut plot = frame(root, chart)
        .build_cartesian_2d(to_axis(x_lo)..to_axis(x_hi), lo..hi)
        .map_err(error)?;
    plot.configure_mesh()
        .x_desc(&x_label)
        .x_labels(6)
        .x_label_formatter(&|v| sepnet_model::human(from_axis(*v).max(0.0).round() as u64))
        .y_desc(chart.y_label)
        .y_label_formatter(&y_formatter(chart.percent, (lo, hi)))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(error)?;
    let mut entries = Vec::new();
    for (i, (s, style)) in series.iter().zip(styles(series)).enumerate() {
        let number = (i + 1).to_string();
        let font = ("sans-serif", 15).into_font().color(&style.0);
        plot.draw_series(s.points.iter().map(|&(x, y)| {
            EmptyElement::at((to_axis(x), y))
                + mark((0, 0), 6, style)
                + Text::new(number.clone(), (7, -18), font.clone())
        }))
        .map_err(error)?;
        let text = match s.points.first() {
            Some(&(x, y)) => format!(
                "{number}  {}: {}, {} MACs",
                s.name,
                y_text(chart.percent, y),
                sepnet_model::human(x as u64)
            ),
            None => format!("{number}  {}", s.name),
        };
        entries.push(Entry {
            style,
            dot: true,
            text,
        });
    }
    Ok(entries)
}

/// A value as a label beside its point or in a legend.
fn y_text(percent: bool, y: f64) -> String {
    if percent {
        format!("{:.2}%", 100.0 * y)
    } else {
        format!("{y:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dots(macs: &[f64]) -> Vec<Series> {
        macs.iter()
            .enumerate()
            .map(|(i, &x)| Series {
                name: format!("m{i}"),
                points: vec![(x, 0.9 + 0.01 * i as f64)],
                variant_of: None,
            })
            .collect()
    }

    #[test]
    fn a_narrow_span_of_macs_gets_a_linear_axis_around_the_data() {
        let (lo, hi, log) = scatter_x_range(&dots(&[2_100_752.0, 2_294_400.0, 5_449_216.0]));
        assert!(!log);
        assert!(lo < 2_100_752.0 && lo > 1_000_000.0 && hi > 5_449_216.0 && hi < 7e6);
        let (_, _, log) = scatter_x_range(&dots(&[18_295_808.0, 152_805_376.0, 397_256_704.0]));
        assert!(log);
    }

    #[test]
    fn the_legend_has_a_strip_of_its_own_under_the_plot() {
        let chart = Chart {
            title: "t",
            x_label: "x",
            y_label: "y",
            kind: Kind::Epochs,
            percent: true,
        };
        let curves: Vec<Series> = (0..3)
            .map(|i| Series {
                name: format!("model {i}"),
                points: (1..=5).map(|e| (e as f64, 0.5 + 0.1 * i as f64)).collect(),
                variant_of: None,
            })
            .collect();
        for (kind, series) in [
            (Kind::Epochs, curves),
            (Kind::Scatter, dots(&[1e6, 2e6, 3e6])),
        ] {
            let png = render(&Chart { kind, ..chart }, &series).unwrap();
            let image = image::load_from_memory(&png).unwrap();
            assert_eq!(image.height(), HEIGHT + legend_height(3));
            // The strip holds the legend: something is drawn there, in each series' colour.
            let strip = image.to_rgb8();
            for color in &COLORS[..3] {
                let found = (HEIGHT..image.height())
                    .flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
                    .any(|(x, y)| strip.get_pixel(x, y).0 == [color.0, color.1, color.2]);
                assert!(found, "{kind:?}: no {color:?} in the legend strip");
            }
        }
    }
}
