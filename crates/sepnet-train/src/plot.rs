//! PNG charts drawn directly (axes, ticks, labels with an 8×8 bitmap font): the loss and
//! accuracy curves of a run, and `compare`'s overlays. No system fonts are needed.

use std::path::Path;

use font8x8::{BASIC_FONTS, UnicodeFonts};
use image::{Rgb, RgbImage};

use crate::metrics::EpochMetrics;
use crate::{TrainError, io_error};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 440;
const LEFT: i64 = 70;
const RIGHT: i64 = 20;
const TOP: i64 = 40;
const BOTTOM: i64 = 50;
/// Series colours, in order.
pub const COLORS: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// One named series of points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn joined in order (or as dots when `line` is false).
    pub points: Vec<(f64, f64)>,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// Title at the top.
    pub title: &'a str,
    /// x-axis label.
    pub x_label: &'a str,
    /// y-axis label.
    pub y_label: &'a str,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Join points with lines.
    pub lines: bool,
}

fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, color: [u8; 3]) {
    for (i, c) in s.chars().enumerate() {
        let glyph = BASIC_FONTS
            .get(c)
            .or_else(|| BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    put(img, x + i as i64 * 8 + col, y + row as i64, color);
                }
            }
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, color: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(color));
    }
}

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: [u8; 3]) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
    for s in 0..=steps {
        let x = x0 + (x1 - x0) * s / steps;
        let y = y0 + (y1 - y0) * s / steps;
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            put(img, x + dx, y + dy, color);
        }
    }
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v.abs() >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws `series` into a PNG at `path`.
pub fn draw(path: &Path, chart: &Chart, series: &[Series]) -> Result<(), TrainError> {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    let fx = |x: f64| if chart.log_x { x.max(1e-12).log10() } else { x };
    let points = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(fx(x)), x1.max(fx(x)), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.08).max(1e-6);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (x0, x1) = if x1 - x0 < 1e-9 {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0, x1)
    };
    let (w, h) = (WIDTH as i64 - LEFT - RIGHT, HEIGHT as i64 - TOP - BOTTOM);
    let px = |x: f64| LEFT + ((fx(x) - x0) / (x1 - x0) * w as f64) as i64;
    let py = |y: f64| TOP + h - ((y - y0) / (y1 - y0) * h as f64) as i64;
    let (black, grey) = ([0, 0, 0], [225, 225, 225]);
    for t in 0..=5 {
        let yv = y0 + (y1 - y0) * t as f64 / 5.0;
        let yy = py(yv);
        line(&mut img, (LEFT, yy), (LEFT + w, yy), grey);
        text(&mut img, 4, yy - 4, &label(yv), black);
        let xv = x0 + (x1 - x0) * t as f64 / 5.0;
        let xx = LEFT + w * t / 5;
        let shown = if chart.log_x { 10f64.powf(xv) } else { xv };
        text(&mut img, xx - 12, TOP + h + 8, &label(shown), black);
    }
    line(&mut img, (LEFT, TOP), (LEFT, TOP + h), black);
    line(&mut img, (LEFT, TOP + h), (LEFT + w, TOP + h), black);
    text(&mut img, LEFT, 12, chart.title, black);
    text(
        &mut img,
        LEFT + w / 2 - 4 * chart.x_label.len() as i64,
        TOP + h + 28,
        chart.x_label,
        black,
    );
    text(&mut img, 4, TOP - 16, chart.y_label, black);
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(i64, i64)> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (px(x), py(y)))
            .collect();
        for pair in pts.windows(2).filter(|_| chart.lines) {
            line(&mut img, pair[0], pair[1], color);
        }
        for &(x, y) in &pts {
            for d in -2..=2 {
                line(&mut img, (x + d, y - 2), (x + d, y + 2), color);
            }
        }
        let ly = TOP + 8 + 12 * i as i64;
        line(
            &mut img,
            (LEFT + w - 190, ly + 3),
            (LEFT + w - 170, ly + 3),
            color,
        );
        text(&mut img, LEFT + w - 164, ly, &s.name, black);
    }
    img.save(path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

/// `loss.png` and `accuracy.png` of a run directory: train vs validation per epoch.
pub fn curves(run_dir: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let series = |name: &str, f: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        points: history.iter().map(|m| (m.epoch as f64, f(m))).collect(),
    };
    std::fs::create_dir_all(run_dir).map_err(|e| io_error(run_dir, e))?;
    let chart = |title, y_label| Chart {
        title,
        x_label: "epoch",
        y_label,
        log_x: false,
        lines: true,
    };
    draw(
        &run_dir.join("loss.png"),
        &chart("loss", "cross-entropy"),
        &[
            series("train", |m| m.train_loss),
            series("validation", |m| m.val_loss),
        ],
    )?;
    draw(
        &run_dir.join("accuracy.png"),
        &chart("accuracy", "accuracy"),
        &[
            series("train", |m| m.train_accuracy),
            series("validation", |m| m.val_accuracy),
        ],
    )
}
