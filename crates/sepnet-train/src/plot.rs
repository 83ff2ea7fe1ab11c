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
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One named series of points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn joined in order (or as labelled dots in a [`Kind::Scatter`]).
    pub points: Vec<(f64, f64)>,
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
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(error)?;
        match chart.kind {
            Kind::Epochs => draw_epochs(&root, chart, series)?,
            Kind::Scatter => draw_scatter(&root, chart, series)?,
        }
        root.present().map_err(error)?;
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(WIDTH, HEIGHT, pixels)
        .expect("buffer sized for the image")
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(error)?;
    Ok(png)
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

fn draw_epochs(root: &Area, chart: &Chart, series: &[Series]) -> Result<(), TrainError> {
    let last_epoch = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let (lo, hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    // Half an epoch of room on each side keeps the first and last points off the frame.
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
    let ends: Vec<f64> = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.1))
        .collect();
    let top_end = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // The last value is the number a reader looks for: beside the point for one or two
    // curves (above the top one, below the other), in the legend when more would collide.
    let crowded = series.len() > 2;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let last = s.points.last().copied();
        let label = match last {
            Some((_, y)) if crowded => {
                format!("{} ({} at the end)", s.name, y_text(chart.percent, y))
            }
            _ => s.name.clone(),
        };
        plot.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(error)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        plot.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(error)?;
        if let (Some((x, y)), false) = (last, crowded) {
            let style = ("sans-serif", 14).into_font().color(&color);
            let offset = if y >= top_end { (-60, -24) } else { (-60, 10) };
            let text = Text::new(y_text(chart.percent, y), offset, style);
            plot.draw_series([EmptyElement::at((x, y)) + text])
                .map_err(error)?;
        }
    }
    // The legend goes where the curves are not: away from where they end.
    let ends_high = ends.iter().sum::<f64>() / ends.len().max(1) as f64 > (lo + hi) / 2.0;
    plot.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(if ends_high {
            SeriesLabelPosition::MiddleRight
        } else {
            SeriesLabelPosition::UpperRight
        })
        .draw()
        .map_err(error)
}

fn draw_scatter(root: &Area, chart: &Chart, series: &[Series]) -> Result<(), TrainError> {
    let xs = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| *x > 0.0)
    };
    let x_lo = xs().fold(f64::INFINITY, f64::min).min(1e9) / 2.0;
    let x_hi = xs().fold(0.0, f64::max).max(x_lo * 4.0) * 2.0;
    let (lo, hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut plot = frame(root, chart)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), lo..hi)
        .map_err(error)?;
    plot.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .x_label_formatter(&|v| sepnet_model::human(*v as u64))
        .y_label_formatter(&y_formatter(chart.percent, (lo, hi)))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(error)?;
    // Points of similar cost and accuracy crowd together: each is numbered, and the legend
    // names the number with its model and figures.
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let number = (i + 1).to_string();
        let legend = match s.points.first() {
            Some(&(x, y)) => format!(
                "{number}  {}: {}, {} MACs",
                s.name,
                y_text(chart.percent, y),
                sepnet_model::human(x as u64)
            ),
            None => format!("{number}  {}", s.name),
        };
        let font = ("sans-serif", 15).into_font().color(&color);
        plot.draw_series(s.points.iter().map(|&p| {
            EmptyElement::at(p)
                + Circle::new((0, 0), 6, color.filled())
                + Text::new(number.clone(), (7, -18), font.clone())
        }))
        .map_err(error)?
        .label(legend)
        .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    plot.configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(error)
}

/// A value as a label beside its point or in a legend.
fn y_text(percent: bool, y: f64) -> String {
    if percent {
        format!("{:.2}%", 100.0 * y)
    } else {
        format!("{y:.4}")
    }
}
