//! Activation ranges from calibration images: every tensor of the float program observed over
//! them, its range taken as the extremes (min/max) or as the 0.01st and 99.99th percentiles
//! (which clip rare outliers, giving the bulk of the values finer steps).

use super::float::forward;
use super::program::Program;

/// How a tensor's observed values become its int8 range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum RangeMethod {
    /// The smallest and largest value seen.
    #[cfg_attr(feature = "cli", value(name = "minmax"))]
    MinMax,
    /// The 0.01st and 99.99th percentiles of the values seen.
    Percentile,
}

impl std::fmt::Display for RangeMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RangeMethod::MinMax => "minmax",
            RangeMethod::Percentile => "percentile",
        })
    }
}

/// The fraction of a tensor's values the percentile method leaves outside its range, per tail.
pub const TAIL: f64 = 1e-4;
/// Histogram bins the percentile method counts values in, per tensor.
const BINS: usize = 2048;
/// Images per forward pass while calibrating.
const BATCH: usize = 64;

/// A tensor's range, always holding 0 (so that zero, and with it padding and ReLU, is exact).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lowest value.
    pub min: f32,
    /// Highest value.
    pub max: f32,
}

/// Each tensor's range over `n` images (NCHW, as the network takes them). An error names a
/// tensor the images make non-finite.
pub fn calibrate(
    program: &Program,
    images: &[f32],
    n: usize,
    method: RangeMethod,
) -> Result<Vec<Range>, String> {
    let extremes = observe_extremes(program, images, n)?;
    let ranges = match method {
        RangeMethod::MinMax => extremes,
        RangeMethod::Percentile => percentiles(program, images, n, &extremes),
    };
    Ok(ranges
        .into_iter()
        .map(|r| Range {
            min: r.min.min(0.0),
            max: r.max.max(0.0),
        })
        .collect())
}

fn batches(images: &[f32], n: usize) -> impl Iterator<Item = (&[f32], usize)> {
    let per_image = images.len() / n.max(1);
    images
        .chunks(per_image * BATCH)
        .map(move |b| (b, b.len() / per_image))
}

fn observe_extremes(program: &Program, images: &[f32], n: usize) -> Result<Vec<Range>, String> {
    let mut ranges = vec![
        Range {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY
        };
        program.shapes.len()
    ];
    let mut bad = None;
    for (batch, count) in batches(images, n) {
        forward(program, batch, count, |t, values| {
            for &v in values {
                if !v.is_finite() {
                    bad.get_or_insert(t);
                }
                ranges[t].min = ranges[t].min.min(v);
                ranges[t].max = ranges[t].max.max(v);
            }
        });
        if let Some(t) = bad {
            return Err(format!(
                "the calibration images make `{}` non-finite (NaN or infinite): the weights are \
                 damaged or the layer overflows; sepnet will not quantize it",
                program.names[t]
            ));
        }
    }
    Ok(ranges)
}

fn percentiles(program: &Program, images: &[f32], n: usize, extremes: &[Range]) -> Vec<Range> {
    let mut histograms = vec![vec![0u64; BINS]; program.shapes.len()];
    for (batch, count) in batches(images, n) {
        forward(program, batch, count, |t, values| {
            let Range { min, max } = extremes[t];
            let width = (max - min).max(f32::MIN_POSITIVE);
            for &v in values {
                let bin = (((v - min) / width) * BINS as f32) as usize;
                histograms[t][bin.min(BINS - 1)] += 1;
            }
        });
    }
    histograms
        .iter()
        .zip(extremes)
        .map(|(h, &Range { min, max })| {
            let total: u64 = h.iter().sum();
            let cut = (total as f64 * TAIL) as u64;
            let bin_value = |bin: usize| min + (max - min) * bin as f32 / BINS as f32;
            let (mut seen, mut low) = (0, 0);
            while low < BINS && seen + h[low] <= cut {
                seen += h[low];
                low += 1;
            }
            let (mut seen, mut high) = (0, BINS);
            while high > 0 && seen + h[high - 1] <= cut {
                seen += h[high - 1];
                high -= 1;
            }
            Range {
                min: bin_value(low).max(min),
                max: bin_value(high).min(max),
            }
        })
        .collect()
}
