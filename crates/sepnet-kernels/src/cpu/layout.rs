//! Moving an NCHW activation between its image-major layout `[batch, rows, pixels]` and a
//! channel-major one `[rows, batch·pixels]`, where a 1×1 convolution over the whole batch is
//! one thick matrix product instead of one thin product per image.

use super::output::filled;

/// `[batch, rows, pixels]` → `[rows, batch·pixels]`.
pub fn channel_major(t: &[f32], batch: usize, rows: usize, pixels: usize) -> Vec<f32> {
    if t.is_empty() {
        return Vec::new();
    }
    filled(
        t.len(),
        batch * pixels,
        || (),
        |_, r, out| out.rows_from(&t[r * pixels..], rows * pixels, pixels),
    )
}

/// `[rows, batch·pixels]` → `[batch, rows, pixels]`.
pub fn image_major(t: &[f32], batch: usize, rows: usize, pixels: usize) -> Vec<f32> {
    if t.is_empty() {
        return Vec::new();
    }
    filled(
        t.len(),
        rows * pixels,
        || (),
        |_, n, out| out.rows_from(&t[n * pixels..], batch * pixels, pixels),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_and_place_every_value() {
        let (batch, rows, pixels) = (3, 4, 5);
        let t: Vec<f32> = (0..batch * rows * pixels).map(|i| i as f32).collect();
        let cm = channel_major(&t, batch, rows, pixels);
        for n in 0..batch {
            for r in 0..rows {
                for p in 0..pixels {
                    let image = t[(n * rows + r) * pixels + p];
                    assert_eq!(cm[(r * batch + n) * pixels + p], image);
                }
            }
        }
        assert_eq!(image_major(&cm, batch, rows, pixels), t);
    }
}
