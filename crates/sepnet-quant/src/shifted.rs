//! An int8 convolution by shifted rows: each weight of an output channel adds
//! `weight · (a row of the padded input)` to that channel's int32 plane. The inner loop is a
//! widening multiply-add over a contiguous row, which the compiler vectorises, and nothing is
//! gathered per output pixel (im2col cost a third of int8 evaluation, most of it on the
//! pointwise and depthwise layers separable networks are made of). Integer sums are exact in
//! any order, so the result equals the im2col one bit for bit (the tests hold it to plain
//! nested loops).

use super::loops::Geometry;
use super::program::Window;

/// One group's input channels padded with `pad` to exactly the planes the windows read.
struct Padded {
    data: Vec<i8>,
    /// `[rows, columns]` of each padded plane.
    size: [usize; 2],
}

impl Padded {
    fn new(geometry: &Geometry, x: &[i8], g: usize, pad: i8) -> Self {
        let [_, h, w] = geometry.input;
        let Window {
            kernel,
            stride,
            dilation,
            pads,
        } = geometry.window;
        let span =
            |i: usize| (geometry.output[i] - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1;
        let (ph, pw) = (span(0), span(1));
        let channels = g * geometry.group_channels..(g + 1) * geometry.group_channels;
        let mut data = vec![pad; geometry.group_channels * ph * pw];
        // The input columns that land in the padded row, and where.
        let first = pads[1].min(pw);
        let count = w.min(pw - first);
        for (plane, ci) in data.chunks_exact_mut(ph * pw).zip(channels) {
            for (py, row) in plane.chunks_exact_mut(pw).enumerate() {
                let Some(y) = py.checked_sub(pads[0]).filter(|&y| y < h) else {
                    continue;
                };
                let source = &x[(ci * h + y) * w..][..count];
                row[first..first + count].copy_from_slice(source);
            }
        }
        Padded {
            data,
            size: [ph, pw],
        }
    }
}

/// `acc += k · row`, widened to int32 (a product of two int8 values fits int16).
#[inline(always)]
fn multiply_add<'a>(acc: &mut [i32], k: i8, row: impl Iterator<Item = &'a i8>) {
    let k = k as i16;
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += (k * v as i16) as i32;
    }
}

/// Where one output channel's taps read the padded planes.
struct Taps {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    output: [usize; 2],
    /// The padded planes' `[rows, columns]`.
    padded: [usize; 2],
}

impl Taps {
    /// Unit strides: each tap is one run over the plane, at the padded row pitch.
    fn wide(&self) -> bool {
        self.stride == [1, 1]
    }
}

sepnet_model::multiversion! {
    /// `acc = Σ_taps k · (the input the tap reads)` for one output channel's `kernel`
    /// (`[in / group, kh, kw]`); `acc` is `[oh, pitch]`.
    fn channel(acc: &mut [i32], kernel: &[i8], planes: &[i8], taps: &Taps) {
        let ([kh, kw], [sh, sw], [dh, dw]) = (taps.kernel, taps.stride, taps.dilation);
        let ([oh, ow], [ph, pw]) = (taps.output, taps.padded);
        acc.fill(0);
        let per_plane = kernel.chunks_exact(kh * kw).zip(planes.chunks_exact(ph * pw));
        for (kernel, plane) in per_plane {
            for (t, &k) in kernel.iter().enumerate().filter(|(_, k)| **k != 0) {
                let start = t / kw * dh * pw + t % kw * dw;
                if taps.wide() {
                    // The last row's extra columns would read past the plane: stop at its end.
                    let span = (oh - 1) * pw + ow;
                    multiply_add(&mut acc[..span], k, plane[start..start + span].iter());
                    continue;
                }
                for (oy, out) in acc.chunks_exact_mut(ow).enumerate() {
                    multiply_add(out, k, plane[start + oy * sh * pw..].iter().step_by(sw));
                }
            }
        }
    }
}

/// Convolves group `g` of the image `x` (`[c, h, w]`, pixels outside it reading `pad`) with
/// `weights` (`[out, in / group, kh, kw]`); hands each output channel `o` of the group and its
/// plane of `Σ x·w` (`[oh · ow]`, int32, exact) to `emit`.
///
/// At unit stride the planes are computed "wide", with the padded plane's row pitch: each tap
/// is one multiply-add over the whole plane rather than one per output row, and the extra
/// columns are dropped before `emit`.
pub fn conv_i8(
    geometry: &Geometry,
    x: &[i8],
    pad: i8,
    weights: &[i8],
    (g, per_group): (usize, usize),
    mut emit: impl FnMut(usize, &[i32]),
) {
    let padded = Padded::new(geometry, x, g, pad);
    let Window {
        kernel,
        stride,
        dilation,
        ..
    } = geometry.window;
    let taps = Taps {
        kernel,
        stride,
        dilation,
        output: geometry.output,
        padded: padded.size,
    };
    let [oh, ow] = geometry.output;
    let pitch = if taps.wide() { padded.size[1] } else { ow };
    let len = geometry.row_len();
    let mut acc = vec![0i32; oh * pitch];
    for o in g * per_group..(g + 1) * per_group {
        channel(
            &mut acc,
            &weights[o * len..(o + 1) * len],
            &padded.data,
            &taps,
        );
        if pitch != ow {
            for oy in 1..oh {
                acc.copy_within(oy * pitch..oy * pitch + ow, oy * ow);
            }
        }
        emit(o, &acc[..oh * ow]);
    }
}
