//! Deterministic test inputs and a tolerance check shared by the kernel tests.

/// `n` values in `[-1, 1)` that differ from seed to seed.
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
        })
        .collect()
}

/// Asserts `ours` equals `expected` to 1e-4 relative (f32 sums in another order).
pub fn close(ours: &[f32], expected: &[f64], what: &str) {
    assert_eq!(ours.len(), expected.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!(
            (*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{what} {i}: {a} vs {b}"
        );
    }
}

/// Widens reference values computed in f32.
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The definition of `a [rows, inner] · b [inner, cols]` (row-major), summed in `f64`.
pub fn product(a: &[f32], b: &[f32], [rows, inner, cols]: [usize; 3]) -> Vec<f64> {
    (0..rows * cols)
        .map(|o| {
            let (r, c) = (o / cols, o % cols);
            (0..inner)
                .map(|i| a[r * inner + i] as f64 * b[i * cols + c] as f64)
                .sum()
        })
        .collect()
}
