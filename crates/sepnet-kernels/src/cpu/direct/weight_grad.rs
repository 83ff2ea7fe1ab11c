//! The weight gradient of a blocked stride-1 convolution, in the blocked layout:
//! `dW[f, c, tap] = Σ over images and output pixels of dy[f, pixel] · x[c, pixel + tap]`.
//!
//! The microkernel keeps `RF` filters × [`BLOCKS`] input-channel blocks of `L` channels in
//! registers: per output pixel, one vector load of each channel block at the tap's offset,
//! one broadcast of each filter's output gradient, `RF · BLOCKS` fused multiply-adds. Pixels are
//! taken a band of rows at a time (the band's input and output gradient stay in cache across
//! taps and tiles), and the partial sums wait between bands in a buffer
//! `[taps, channel blocks, filters, L]`. Each accumulator is the same chain of multiply-adds
//! (images, bands, rows, columns in order) at every level, so every level gives the same bits.

#[cfg(target_arch = "x86_64")]
use super::lanes::x86;
use super::lanes::{Lanes, Portable};
use super::layout::Plan;
use crate::cpu::parallel::sum_over_batch;
use crate::cpu::simd::{Level, detected};
use crate::geometry::Geometry;

/// Input-channel blocks per tile.
const BLOCKS: usize = 2;

/// Output pixels a band holds, about: enough to amortise a tile's loads and stores of its
/// accumulators, few enough that a band's rows stay in cache.
const BAND_PIXELS: usize = 128;

/// One image's inputs to the kernel.
struct Image<'a> {
    /// Padded blocked input `[c / L, rows, cols, L]` (the plan's).
    x: &'a [f32],
    /// Blocked output gradient `[f / L, oh, ow, L]`.
    dy: &'a [f32],
}

/// What every tile of a convolution shares.
struct Shape<'a> {
    plan: &'a Plan,
    /// Filter blocks.
    filter_blocks: usize,
}

impl Shape<'_> {
    /// Filters rounded up to whole blocks.
    fn filters(&self) -> usize {
        self.filter_blocks * self.plan.lanes
    }

    /// Offset of tile `(tap, channel block, filter)` in the partial sums.
    fn at(&self, t: usize, cb: usize, f: usize) -> usize {
        ((t * self.plan.in_blocks() + cb) * self.filters() + f) * self.plan.lanes
    }
}

/// One tile over one band of output rows: `RF` filters from `f0` × `CB` channel blocks from
/// `cb0` at tap `t`, added into `sums`.
///
/// # Safety
/// The tile must lie inside the plan: `f0 + RF` within the padded filters (and inside one
/// filter block), `cb0 + CB` within the channel blocks, the rows within the output.
#[inline(always)]
unsafe fn tile<V: Lanes, const RF: usize, const CB: usize>(
    s: &Shape,
    im: &Image,
    sums: &mut [f32],
    [t, cb0, f0]: [usize; 3],
    rows: std::ops::Range<usize>,
) {
    let (plan, n) = (s.plan, V::N);
    let [oh, ow] = plan.out;
    let mut acc = [[V::zero(); CB]; RF];
    for (i, row) in acc.iter_mut().enumerate() {
        for (b, a) in row.iter_mut().enumerate() {
            // SAFETY: inside `sums` (the caller's bound).
            *a = unsafe { V::load(sums.as_ptr().add(s.at(t, cb0 + b, f0 + i))) };
        }
    }
    let x =
        im.x.as_ptr()
            .wrapping_add(plan.taps[t] + cb0 * plan.in_block_len());
    let dy = im.dy.as_ptr().wrapping_add((f0 / n * oh * ow) * n + f0 % n);
    for p in rows {
        for q in 0..ow {
            // SAFETY: inside the padded input and the output gradient (the caller's bound).
            unsafe {
                let x = x.add((p * plan.padded[1] + q) * n);
                let xs: [V; CB] = std::array::from_fn(|b| V::load(x.add(b * plan.in_block_len())));
                let dy = dy.add((p * ow + q) * n);
                for (i, row) in acc.iter_mut().enumerate() {
                    let g = *dy.add(i);
                    for (a, x) in row.iter_mut().zip(xs) {
                        *a = a.mul_add(g, x);
                    }
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (b, a) in row.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { a.store(sums.as_mut_ptr().add(s.at(t, cb0 + b, f0 + i))) };
        }
    }
}

/// Every tile of one image, band by band, into `sums`.
#[inline(always)]
fn image<V: Lanes, const RF: usize>(s: &Shape, im: &Image, sums: &mut [f32]) {
    let plan = s.plan;
    let [oh, ow] = plan.out;
    let band = (BAND_PIXELS / ow.max(1)).max(1);
    let blocks = plan.in_blocks();
    for start in (0..oh).step_by(band) {
        let rows = start..oh.min(start + band);
        for t in 0..plan.taps.len() {
            for cb0 in (0..blocks).step_by(BLOCKS) {
                for f0 in (0..s.filters()).step_by(RF) {
                    let at = [t, cb0, f0];
                    // SAFETY: `RF` divides the lanes, so the tile lies in one filter block;
                    // the loops keep it inside the plan.
                    unsafe {
                        if cb0 + BLOCKS <= blocks {
                            tile::<V, RF, BLOCKS>(s, im, sums, at, rows.clone())
                        } else {
                            tile::<V, RF, 1>(s, im, sums, at, rows.clone())
                        }
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn image_avx512(s: &Shape, im: &Image, sums: &mut [f32]) {
    image::<x86::Avx512, 8>(s, im, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn image_avx2(s: &Shape, im: &Image, sums: &mut [f32]) {
    image::<x86::Avx2, 4>(s, im, sums)
}

/// One image's contribution added into `sums`, with the instructions of `level` (whose lanes
/// the plan has).
fn add_image(level: Level, s: &Shape, im: &Image, sums: &mut [f32]) {
    assert!(level <= detected(), "CPU lacks {level:?}");
    assert_eq!(sums.len(), s.at(s.plan.taps.len(), 0, 0), "partial sums");
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked above that the CPU has the level's instructions.
        Level::Avx512 => unsafe { image_avx512(s, im, sums) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { image_avx2(s, im, sums) },
        _ => image::<Portable, 4>(s, im, sums),
    }
}

/// `dW [filters, c, k_h, k_w]` of stride-1 convolution `g` from its blocked input `x` and
/// blocked output gradient `dy`, with the microkernel of `level`.
pub(super) fn backward_weight(
    level: Level,
    x: &[f32],
    dy: &[f32],
    g: &Geometry,
    filters: usize,
) -> Vec<f32> {
    let lanes = super::microkernel::lanes(level);
    let plan = Plan::new(g, filters, lanes);
    let s = Shape {
        plan: &plan,
        filter_blocks: filters.div_ceil(lanes),
    };
    let [batch, c, h, w] = g.input;
    let [oh, ow] = plan.out;
    let (x_image, dy_image) = (plan.in_blocks() * h * w * lanes, s.filters() * oh * ow);
    let taps = plan.taps.len();
    let size = filters * c * taps;
    if batch == 0 || oh * ow == 0 {
        return vec![0.0; size];
    }
    sum_over_batch(batch, size, |images| {
        let mut sums = vec![0.0f32; s.at(taps, 0, 0)];
        let mut scratch = Vec::new();
        for n in images {
            let im = Image {
                x: plan.padded(&x[n * x_image..][..x_image], g, &mut scratch),
                dy: &dy[n * dy_image..][..dy_image],
            };
            add_image(level, &s, &im, &mut sums);
        }
        // `[taps, c / L, f, L]` → `[f, c, taps]`.
        let mut dw = vec![0.0f32; size];
        for (i, v) in dw.iter_mut().enumerate() {
            let (t, ci, f) = (i % taps, i / taps % c, i / (taps * c));
            *v = sums[s.at(t, ci / lanes, f) + ci % lanes];
        }
        dw
    })
}
