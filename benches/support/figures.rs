//! Samples into printed figures: sorting, percentiles, milliseconds.
//!
//! Two percentile rules are in use and both are kept, so that figures stay
//! comparable with the ones quoted before: [`at`] (index `floor(n * p)`) and
//! [`nearest_rank`] (rank `ceil(n * p)`, which makes p99 of fewer than 100
//! samples the maximum).

use std::cmp::Ordering;
use std::time::Duration;

/// A sample that can be put in order (f64 by `total_cmp`, so NaN sorts last).
pub trait Sample: Copy {
    fn order(&self, other: &Self) -> Ordering;
}

impl Sample for f64 {
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

impl Sample for Duration {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

/// The samples in ascending order.
pub fn sorted<T: Sample>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(T::order);
    v
}

/// The sample at index `floor(n * p)` of sorted samples (`p = 1.0` is the
/// maximum). Panics on no samples: a bench that measured nothing is broken.
pub fn at<T: Sample>(sorted: &[T], p: f64) -> T {
    assert!(!sorted.is_empty(), "a percentile of no samples");
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Nearest-rank percentile of sorted samples; NaN when there are none.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
