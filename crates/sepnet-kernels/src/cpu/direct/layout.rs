//! The padded blocked layout the direct convolution reads, and its packed weights.
//!
//! A blocked image `[c / L, h, w, L]` ([`super::blocked`]) is copied into `[c / L, rows, cols, L]` (`L` = the vector's lanes): channels in
//! blocks of `L`, the block's channels adjacent in memory, zeros in the padding around the
//! plane and in the missing channels of a last partial block. A vector of `L` weights then
//! multiplies one broadcast input value, and the padding needs no test in the microkernel. The
//! padded plane also covers what the last tile reads when the output is rounded up to whole
//! tiles. The microkernel computes [`GROUP`] output blocks at once (each broadcast value feeds
//! one FMA per block), so weights become `[filters / (GROUP·L), chunks, k_h·k_w, chunk channels,
//! GROUP·L]`: per chunk of input channels, kernel tap and channel, the filters of one group side
//! by side, zeros for missing filters. Partial sums between chunks of input channels are kept as
//! `GROUP × [oh', ow', L]` per group (rounded up to whole tiles); finished tiles go to the
//! blocked output.

use crate::geometry::Geometry;

/// Output blocks computed together: each broadcast input value is used by this many FMAs.
pub(crate) const GROUP: usize = 2;

/// Input channels summed per pass over the plane: a multiple of every level's lanes, the same
/// at every level, so that each output's chain of multiply-adds is too.
pub(crate) const CHUNK: usize = 16;

/// The microkernel's output tiles `[rows, cols]` (pixels; [`GROUP`] accumulator registers
/// each), by lanes. Each layer takes the one with the least work for its plane rounded up to
/// whole tiles, a tile's own overhead (weight loads, stores) counted as four accumulators'.
/// AVX-512 has 32 vector registers, but tiles of more than 16 accumulators ran slower (24:
/// 97 GFLOP/s on one core against 168 for 16, in a loop of nothing else); AVX2 has 16
/// registers: up to 12 accumulators beside the weights and the broadcast.
pub(crate) const TILES_16: &[[usize; 2]] = &[[1, 8], [2, 4], [1, 7], [1, 6], [1, 4], [2, 2]];
/// See [`TILES_16`].
pub(crate) const TILES_8: &[[usize; 2]] = &[[1, 6], [2, 3], [3, 2], [1, 4], [2, 2]];

/// Every size of one convolution in the blocked layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Channels per block: the vector's `f32` lanes.
    pub lanes: usize,
    /// Input channels.
    pub channels: usize,
    /// Filters (output channels).
    pub filters: usize,
    /// Padded input plane `[rows, cols]`.
    pub padded: [usize; 2],
    /// The microkernel's output tile `[rows, cols]`.
    pub tile: [usize; 2],
    /// The output plane `[rows, cols]` rounded up to whole tiles.
    pub rounded: [usize; 2],
    /// The output plane `[rows, cols]`.
    pub out: [usize; 2],
    /// Stride `[rows, cols]`.
    pub stride: [usize; 2],
    /// Offset of every kernel tap into a padded block, in floats, row-major.
    pub taps: Vec<usize>,
}

/// The tile from `tiles` with the least work for an `out` plane (see [`TILES_16`]).
fn best_tile(out: [usize; 2], tiles: &[[usize; 2]]) -> [usize; 2] {
    let cost = |t: &[usize; 2]| {
        let rounded = out[0].next_multiple_of(t[0]) * out[1].next_multiple_of(t[1]);
        rounded as f64 * (1.0 + 4.0 / (t[0] * t[1] * GROUP) as f64)
    };
    *tiles
        .iter()
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .expect("tile tables are not empty")
}

impl Plan {
    /// The plan of convolution `g` with `filters` filters at `lanes` lanes (8 or 16).
    pub fn new(g: &Geometry, filters: usize, lanes: usize) -> Plan {
        let [_, channels, h, w] = g.input;
        let out = g.output_hw();
        let tile = best_tile(out, if lanes == 16 { TILES_16 } else { TILES_8 });
        let rounded = [0, 1].map(|a| out[a].next_multiple_of(tile[a]));
        let [t, b, l, r] = g.pads;
        // The last tile's window ends at (rounded − 1)·stride + (k − 1)·dilation + 1.
        let reach =
            |a: usize| (rounded[a] - 1) * g.stride[a] + (g.kernel[a] - 1) * g.dilation[a] + 1;
        let padded = [(h + t + b).max(reach(0)), (w + l + r).max(reach(1))];
        let taps = (0..g.kernel[0])
            .flat_map(|i| (0..g.kernel[1]).map(move |j| (i, j)))
            .map(|(i, j)| (i * g.dilation[0] * padded[1] + j * g.dilation[1]) * lanes)
            .collect();
        Plan {
            lanes,
            channels,
            filters,
            padded,
            tile,
            rounded,
            out,
            stride: g.stride,
            taps,
        }
    }

    /// Input channels one pass over the plane sums, its partial sums kept between passes: a
    /// [`CHUNK`] of a K×K kernel (whose weights then stay in L1), every channel of a 1×1
    /// one (whose [`CHUNK`]'s weights fill a sixteenth of L1, too few multiply-adds to pay
    /// for a tile's partial sums loaded and stored: 1×1 layers ran at 145–170 GFLOP/s
    /// with a pass per [`CHUNK`]).
    pub fn span(&self) -> usize {
        if self.taps.len() == 1 {
            self.channels.next_multiple_of(CHUNK).max(CHUNK)
        } else {
            CHUNK
        }
    }

    /// Input channel blocks.
    pub fn in_blocks(&self) -> usize {
        self.channels.div_ceil(self.lanes)
    }

    /// Output channel groups of [`GROUP`] blocks.
    pub fn groups(&self) -> usize {
        self.filters.div_ceil(GROUP * self.lanes)
    }

    /// Floats in one padded input block `[rows, cols, lanes]`.
    pub fn in_block_len(&self) -> usize {
        self.padded[0] * self.padded[1] * self.lanes
    }

    /// Floats in one blocked image.
    pub fn in_len(&self) -> usize {
        self.in_blocks() * self.in_block_len()
    }

    /// Floats in one rounded output block `[rows, cols, lanes]`.
    pub fn out_block_len(&self) -> usize {
        self.rounded[0] * self.rounded[1] * self.lanes
    }

    /// Floats in one group's packed weights `[taps, channels, GROUP·lanes]`.
    pub fn weight_group_len(&self) -> usize {
        self.taps.len() * self.channels * GROUP * self.lanes
    }

    /// Copies one blocked image `x [c / L, h, w, L]` of convolution `g` into `padded` (of
    /// [`Plan::in_len`] floats), zeros in `g`'s padding and beyond: a row copy per block row.
    pub fn pad_input(&self, x: &[f32], g: &Geometry, padded: &mut [f32]) {
        let ([_, _, h, w], [top, _, left, _]) = (g.input, g.pads);
        let (lanes, cols) = (self.lanes, self.padded[1]);
        padded.fill(0.0);
        let blocks = x.chunks_exact(h * w * lanes);
        for (block, src) in padded.chunks_exact_mut(self.in_block_len()).zip(blocks) {
            for (i, src) in src.chunks_exact(w * lanes).enumerate() {
                block[((top + i) * cols + left) * lanes..][..w * lanes].copy_from_slice(src);
            }
        }
    }

    /// One blocked image `x` as the kernels read it: `x` itself when the plan pads nothing (a
    /// 1×1 convolution; the copy cost a tenth of vgg-separable's training step), else copied
    /// into `scratch` by [`Plan::pad_input`].
    pub fn padded<'a>(&self, x: &'a [f32], g: &Geometry, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        if self.padded == [g.input[2], g.input[3]] {
            return x;
        }
        scratch.resize(self.in_len(), 0.0);
        self.pad_input(x, g, scratch);
        scratch
    }

    /// Group `k`'s weights in `packed` (from [`Plan::pack_weights`]).
    pub fn group_weights<'a>(&self, packed: &'a [f32], k: usize) -> &'a [f32] {
        &packed[k * self.weight_group_len()..][..self.weight_group_len()]
    }

    /// Packs burn's `weight [filters, c, k_h, k_w]` as `[groups, chunks, k_h·k_w, chunk
    /// channels, GROUP·L]`: the weights one pass over the plane uses lie in one run, so their
    /// cache lines spread over every L1 set (tap by tap over all channels, a chunk's nine
    /// pieces lay `c·GROUP·L` floats apart — 16 KiB for 128 channels — in the same few sets).
    pub fn pack_weights(&self, weight: &[f32]) -> Vec<f32> {
        let (width, c, taps) = (GROUP * self.lanes, self.channels, self.taps.len());
        let mut packed = vec![0.0; self.groups() * self.weight_group_len()];
        for (f, filter) in weight.chunks_exact(c * taps).enumerate().take(self.filters) {
            let group = &mut packed[(f / width) * self.weight_group_len()..];
            for (ci, kernel) in filter.chunks_exact(taps).enumerate() {
                let start = ci - ci % CHUNK;
                let (chunk, len) = (&mut group[start * taps * width..], CHUNK.min(c - start));
                for (t, &v) in kernel.iter().enumerate() {
                    chunk[(t * len + ci - start) * width + f % width] = v;
                }
            }
        }
        packed
    }
}
