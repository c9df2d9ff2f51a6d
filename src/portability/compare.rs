//! Error statistics between a GPU result and the reference.

use serde::Serialize;

/// How far `got` is from `want`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Errors {
    /// Largest |got - want|.
    pub max_abs: f64,
    /// Largest |got - want| / |want| over elements with |want| >= 1e-3 (relative error is
    /// meaningless near zero).
    pub max_rel: f64,
    /// Largest distance in units in the last place of f32.
    pub max_ulp: u64,
    /// Elements outside atol + rtol * |want|.
    pub violations: usize,
}

/// Maps f32 bit patterns onto a line where neighbouring floats differ by 1.
fn ordered(x: f32) -> i64 {
    let bits = x.to_bits() as i32;
    if bits < 0 {
        i32::MIN as i64 - bits as i64
    } else {
        bits as i64
    }
}

/// Floats between `a` and `b` (u64::MAX if either is NaN).
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    (ordered(a) - ordered(b)).unsigned_abs()
}

/// Error statistics of `got` against `want`, with `atol + rtol * |want|` as the tolerance.
pub fn compare(got: &[f32], want: &[f32], atol: f64, rtol: f64) -> Errors {
    if got.len() != want.len() {
        return Errors {
            max_abs: f64::INFINITY,
            max_rel: f64::INFINITY,
            max_ulp: u64::MAX,
            violations: want.len().max(1),
        };
    }
    let mut e = Errors::default();
    for (&g, &w) in got.iter().zip(want) {
        // NaN where the reference has NaN, or the same infinity, is exact; NaN anywhere else is
        // infinitely wrong.
        let same = g == w || (g.is_nan() && w.is_nan());
        let diff = (g as f64 - w as f64).abs();
        let diff = if same {
            0.0
        } else if diff.is_nan() {
            f64::INFINITY
        } else {
            diff
        };
        e.max_abs = e.max_abs.max(diff);
        if w.abs() >= 1e-3 {
            e.max_rel = e.max_rel.max(diff / w.abs() as f64);
        }
        if !same {
            e.max_ulp = e.max_ulp.max(ulp_distance(g, w));
        }
        if diff > atol + rtol * w.abs() as f64 || (diff.is_infinite() && !same) {
            e.violations += 1;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_matches_only_nan_and_infinity_only_itself() {
        let nan = f32::NAN;
        let inf = f32::INFINITY;
        assert_eq!(
            compare(&[nan, inf, 1.0], &[nan, inf, 1.0], 0.0, 0.0).violations,
            0
        );
        assert_eq!(compare(&[nan], &[1.0], 1e3, 1e3).violations, 1);
        assert_eq!(compare(&[1.0], &[nan], 1e3, 1e3).violations, 1);
        assert_eq!(compare(&[inf], &[1.0], 1e3, 1e3).violations, 1);
        assert_eq!(compare(&[1.0], &[inf], 1e3, 1e3).violations, 1);
        assert_eq!(compare(&[-inf], &[inf], 1e3, 1e3).violations, 1);
    }
}
