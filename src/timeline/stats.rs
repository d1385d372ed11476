//! Small robust statistics used by the spotter.

/// The largest value (0 for none: activations are never negative).
pub fn peak(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

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

/// Running median of `series` over the `sample` frames (sorted indices) within `half_window_s`
/// of each frame, computed every `stride` frames and interpolated between; `fallback` where
/// fewer than `min_count` samples fall in the window.
pub fn local_median(
    series: &[f64],
    times: &[f64],
    sample: &[usize],
    half_window_s: f64,
    min_count: usize,
    stride: usize,
    fallback: f64,
) -> Vec<f64> {
    let n = series.len();
    let stride = stride.max(1);
    let at = |i: usize| {
        let lo = sample.partition_point(|&j| times[j] < times[i] - half_window_s);
        let hi = sample.partition_point(|&j| times[j] <= times[i] + half_window_s);
        let mut v: Vec<f64> = sample[lo..hi]
            .iter()
            .map(|&j| series[j])
            .filter(|v| !v.is_nan())
            .collect();
        if v.len() < min_count {
            fallback
        } else {
            median(&mut v)
        }
    };
    let knots: Vec<usize> = (0..n)
        .step_by(stride)
        .chain((n > 0).then_some(n - 1))
        .collect();
    let values: Vec<f64> = knots.iter().map(|&i| at(i)).collect();
    (0..n)
        .map(|i| {
            let k = knots.partition_point(|&j| j <= i).saturating_sub(1);
            if knots[k] == i || k + 1 >= knots.len() {
                return values[k];
            }
            let (a, b) = (knots[k], knots[k + 1]);
            let f = (i - a) as f64 / (b - a) as f64;
            values[k] + f * (values[k + 1] - values[k])
        })
        .collect()
}

/// Slope of `y` on `x` by least squares, refitted once without the points beyond three robust
/// spreads of the first fit's residuals (an expression held in the baseline would tilt it); 0
/// for fewer than 10 points or no spread in `x`.
pub fn robust_slope(points: &[(f64, f64)]) -> f64 {
    let fit = |pts: &[(f64, f64)]| -> Option<(f64, f64)> {
        let n = pts.len() as f64;
        if pts.len() < 10 {
            return None;
        }
        let (mx, my) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
        let (sxy, sxx) = pts.iter().fold((0.0, 0.0), |(a, b), p| {
            (a + (p.0 - mx) * (p.1 - my), b + (p.0 - mx).powi(2))
        });
        (sxx > 1e-12).then(|| (sxy / sxx, my - sxy / sxx * mx))
    };
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let Some((b, a)) = fit(&points) else {
        return 0.0;
    };
    let residuals: Vec<f64> = points.iter().map(|p| p.1 - a - b * p.0).collect();
    let spread = mad_sigma(&residuals, 0.0);
    let kept: Vec<(f64, f64)> = points
        .iter()
        .zip(&residuals)
        .filter(|(_, r)| r.abs() <= 3.0 * spread)
        .map(|(p, _)| *p)
        .collect();
    fit(&kept).map_or(b, |f| f.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_median_follows_a_held_step_and_ignores_a_brief_one() {
        let n = 300;
        let times: Vec<f64> = (0..n).map(|i| i as f64 / 30.0).collect();
        // 0 until frame 150, then 1 for good; a 0.3 s bump of 5 at frames 40..49.
        let series: Vec<f64> = (0..n)
            .map(|i| match i {
                40..49 => 5.0,
                150.. => 1.0,
                _ => 0.0,
            })
            .collect();
        let all: Vec<usize> = (0..n).collect();
        let m = local_median(&series, &times, &all, 2.0, 15, 6, f64::NAN);
        assert_eq!(m[45], 0.0, "a 0.3 s movement stays above its baseline");
        assert_eq!(m[10], 0.0);
        assert_eq!(m[290], 1.0, "a held change becomes the baseline");
        assert!(m[100] == 0.0 && m[200] == 1.0);
        // Too few samples in the window: the fallback.
        let sparse = [0usize, 299];
        let f = local_median(&series, &times, &sparse, 2.0, 15, 6, 7.0);
        assert_eq!(f[150], 7.0);
    }

    #[test]
    fn the_robust_slope_ignores_a_held_outlier_cluster() {
        // y = 0.5 x + noise, and 10 % of frames far off (an expression in the baseline).
        let mut points: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let x = (i % 20) as f64 / 20.0;
                (x, 0.5 * x + 0.001 * ((i * 7 % 5) as f64 - 2.0))
            })
            .collect();
        for p in points.iter_mut().take(20) {
            p.1 += 3.0;
        }
        let b = robust_slope(&points);
        assert!((b - 0.5).abs() < 0.02, "slope {b}");
        assert_eq!(robust_slope(&points[..5]), 0.0, "too few points");
        assert_eq!(robust_slope(&[(1.0, 2.0); 20]), 0.0, "no spread in x");
        assert_eq!(robust_slope(&[(f64::NAN, 1.0); 20]), 0.0);
    }
}
