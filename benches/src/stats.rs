//! Statistics of the measures: latency [`Samples`] with their quantiles,
//! the median and range of rates, and unit conversions for the tables.

use std::time::Duration;

/// Latency samples.
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Their sum.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i]
    }
    /// Their median.
    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }
    /// Their 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Median, min and max of some rates.
pub(crate) fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

pub(crate) fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}
