//! Small robust statistics used by the spotter.

/// Median of the values (reorders them); NaN for none.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median absolute deviation from `centre`, scaled to a normal standard deviation.
pub fn mad_sigma(values: &[f64], centre: f64) -> f64 {
    let mut dev: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
    1.4826 * median(&mut dev)
}

/// Centred moving average over `radius` frames each side, skipping missing (NaN) values; a
/// missing value stays missing so that smoothing never invents a face.
pub fn smooth(series: &[f64], radius: usize) -> Vec<f64> {
    (0..series.len())
        .map(|i| {
            if series[i].is_nan() {
                return f64::NAN;
            }
            let lo = i.saturating_sub(radius);
            let hi = (i + radius + 1).min(series.len());
            let (sum, n) = series[lo..hi]
                .iter()
                .filter(|v| !v.is_nan())
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            sum / n as f64
        })
        .collect()
}
