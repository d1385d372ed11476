//! Dense video without the detector on every frame: the previous frame's landmarks give the
//! next frame's crop.
//!
//! The 416 detector is most of a frame's cost; the landmark and expression networks read only a
//! 112×112 crop. Between detections the tracker moves each face's last detection box with the
//! head (a scale + translation fitted on landmarks that expressions hardly move: eye corners and
//! nose), so the landmark network sees the crop the detector would most likely have given. It
//! asks for the detector on every frame whose index is a multiple of `redetect_every` (new faces
//! are found within that), when a tracked face moved or changed size more than a crop can
//! follow, when its landmarks no longer fit the face's shape at detection (lost, occluded), and
//! when a crop reaches the frame's edge (a face leaving).
//!
//! The periodic detections fall on fixed frame indices, and nothing before a detection reaches
//! past it, so a clip cut into chunks of `redetect_every` frames, each analysed by its own
//! tracker ([`FaceTracker::starting_at`], e.g. in parallel Web Workers), gives the same results
//! as one tracker over the whole clip.
//!
//! A plain state machine: [`FaceTracker::plan`] says what to run on the next frame,
//! [`FaceTracker::detected`] and [`FaceTracker::tracked`] take what came out. The executor is
//! [`super::FaceAnalyzer::analyze_sequence`], the same for the CLI and the page.

use serde::{Deserialize, Serialize};

use super::{FrameFaces, PixelBox};

/// How dense analysis uses the detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrackingOptions {
    /// Off: the detector runs on every frame (face-api.js' way).
    pub enabled: bool,
    /// The detector runs on every frame whose index is a multiple of this.
    pub redetect_every: usize,
    /// Largest head movement from one frame to the next, as a fraction of the face's size, that
    /// a tracked crop follows; a larger one is detected again.
    pub max_shift: f64,
    /// Largest change of the face's size from one frame to the next (ratio − 1).
    pub max_scale_change: f64,
    /// Largest misfit of the stable landmarks against the face's shape at its detection (RMS
    /// after a scale + translation fit, relative to their spread).
    pub max_shape_error: f64,
    /// A crop nearer the frame's edge than this fraction of its size is detected again.
    pub edge_margin: f64,
}

impl Default for TrackingOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            redetect_every: 15,
            max_shift: 0.15,
            max_scale_change: 0.1,
            max_shape_error: 0.2,
            edge_margin: 0.02,
        }
    }
}

impl TrackingOptions {
    /// The defaults with tracking on or off and, if given, another re-detection interval (what
    /// the CLI's flags and the page's options set; 0 means every frame, as 1 does).
    pub fn with(enabled: bool, redetect_every: Option<usize>) -> Self {
        let defaults = Self::default();
        Self {
            enabled,
            redetect_every: redetect_every.unwrap_or(defaults.redetect_every).max(1),
            ..defaults
        }
    }

    /// Detection on every frame.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Checks numbers a user may have typed.
    pub fn validate(&self) -> Result<(), String> {
        if self.redetect_every == 0 {
            return Err("redetect_every must be at least 1".into());
        }
        let finite_positive = [
            ("max_shift", self.max_shift),
            ("max_scale_change", self.max_scale_change),
            ("max_shape_error", self.max_shape_error),
        ];
        for (name, value) in finite_positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("{name} must be a positive number, got {value}"));
            }
        }
        if !(self.edge_margin.is_finite() && self.edge_margin >= 0.0) {
            return Err(format!(
                "edge_margin must be a number ≥ 0, got {}",
                self.edge_margin
            ));
        }
        Ok(())
    }
}

/// Why a frame went to the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectReason {
    Disabled,
    NoFace,
    Periodic,
    Edge,
    Moved,
    Lost,
}

/// What the tracker says of a tracked frame's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Run the detector on this frame again.
    Detect(DetectReason),
}

/// How many frames were detected and tracked, and why the detector ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackingStats {
    /// Frames the detector ran on (a tracked frame that was lost counts in both).
    pub detected: usize,
    pub tracked: usize,
    pub periodic: usize,
    pub edge: usize,
    pub moved: usize,
    pub lost: usize,
}

impl TrackingStats {
    /// The counts of two parts of one clip (chunks analysed apart) together.
    pub fn merged(self, other: Self) -> Self {
        Self {
            detected: self.detected + other.detected,
            tracked: self.tracked + other.tracked,
            periodic: self.periodic + other.periodic,
            edge: self.edge + other.edge,
            moved: self.moved + other.moved,
            lost: self.lost + other.lost,
        }
    }
}

/// Landmarks that expressions hardly move: nose bridge and tip (27–35), eye corners.
const STABLE: [usize; 13] = [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45];

/// One face followed since its detection.
#[derive(Debug, Clone)]
struct Anchor {
    detection: PixelBox,
    score: f64,
    /// Stable landmarks at the detection.
    reference: Vec<[f64; 2]>,
    /// Stable landmarks of the latest frame.
    last: Vec<[f64; 2]>,
}

/// `b ≈ scale · (a − from) + to`, fitted by least squares on matching points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    scale: f64,
    from: [f64; 2],
    to: [f64; 2],
    /// RMS distance left after the fit, relative to the spread of `b`.
    error: f64,
}

fn centroid(points: &[[f64; 2]]) -> [f64; 2] {
    let n = points.len().max(1) as f64;
    let (x, y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
    [x / n, y / n]
}

fn spread(points: &[[f64; 2]], c: [f64; 2]) -> f64 {
    let n = points.len().max(1) as f64;
    (points
        .iter()
        .map(|p| (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

fn fit(a: &[[f64; 2]], b: &[[f64; 2]]) -> Fit {
    let (ca, cb) = (centroid(a), centroid(b));
    let mut dot = 0.0;
    let mut norm = 0.0;
    for (p, q) in a.iter().zip(b) {
        let (ax, ay) = (p[0] - ca[0], p[1] - ca[1]);
        dot += ax * (q[0] - cb[0]) + ay * (q[1] - cb[1]);
        norm += ax * ax + ay * ay;
    }
    let scale = if norm > 0.0 { dot / norm } else { 1.0 };
    let n = a.len().max(1) as f64;
    let residual = a
        .iter()
        .zip(b)
        .map(|(p, q)| {
            let x = scale * (p[0] - ca[0]) + cb[0] - q[0];
            let y = scale * (p[1] - ca[1]) + cb[1] - q[1];
            x * x + y * y
        })
        .sum::<f64>()
        / n;
    let size = spread(b, cb).max(1e-9);
    Fit {
        scale,
        from: ca,
        to: cb,
        error: residual.sqrt() / size,
    }
}

fn stable_points(landmarks: &[[f64; 2]]) -> Option<Vec<[f64; 2]>> {
    (landmarks.len() == 68).then(|| STABLE.iter().map(|&i| landmarks[i]).collect())
}

impl Anchor {
    /// The detection box moved and scaled as the head moved since the detection.
    fn predicted_box(&self) -> PixelBox {
        let f = fit(&self.reference, &self.last);
        let d = &self.detection;
        let (cx, cy) = (d.x + d.width / 2.0, d.y + d.height / 2.0);
        let (ncx, ncy) = (
            f.scale * (cx - f.from[0]) + f.to[0],
            f.scale * (cy - f.from[1]) + f.to[1],
        );
        let (w, h) = (d.width * f.scale, d.height * f.scale);
        PixelBox {
            x: ncx - w / 2.0,
            y: ncy - h / 2.0,
            width: w,
            height: h,
        }
    }
}

/// Decides, frame by frame, where the detector is needed (see the module's text).
#[derive(Debug, Clone)]
pub struct FaceTracker {
    options: TrackingOptions,
    faces: Vec<Anchor>,
    /// Index of the next frame in the clip.
    next_frame: usize,
    stats: TrackingStats,
}

impl FaceTracker {
    pub fn new(options: TrackingOptions) -> Self {
        Self::starting_at(options, 0)
    }

    /// A tracker for the frames of a clip from `first_frame` on; starting at a multiple of
    /// `redetect_every`, it gives the same results as one that saw the frames before.
    pub fn starting_at(options: TrackingOptions, first_frame: usize) -> Self {
        Self {
            options,
            faces: Vec::new(),
            next_frame: first_frame,
            stats: TrackingStats::default(),
        }
    }

    pub fn options(&self) -> TrackingOptions {
        self.options
    }

    pub fn stats(&self) -> TrackingStats {
        self.stats
    }

    /// The tracked boxes, or why the detector must run.
    pub fn plan(&self, width: usize, height: usize) -> Result<Vec<(PixelBox, f64)>, DetectReason> {
        if !self.options.enabled {
            return Err(DetectReason::Disabled);
        }
        if self
            .next_frame
            .is_multiple_of(self.options.redetect_every.max(1))
        {
            return Err(DetectReason::Periodic);
        }
        if self.faces.is_empty() {
            return Err(DetectReason::NoFace);
        }
        let (w, h) = (width as f64, height as f64);
        let mut boxes = Vec::with_capacity(self.faces.len());
        for face in &self.faces {
            let b = face.predicted_box();
            let margin = self.options.edge_margin * b.width.max(b.height);
            let inside = b.x >= margin
                && b.y >= margin
                && b.right() <= w - margin
                && b.bottom() <= h - margin;
            if !(inside && b.width.is_finite() && b.width > 1.0 && b.height > 1.0) {
                return Err(DetectReason::Edge);
            }
            boxes.push((b, face.score));
        }
        Ok(boxes)
    }

    /// The boxes the tracked faces are predicted at, wherever they are.
    pub fn predicted_boxes(&self) -> Vec<(PixelBox, f64)> {
        self.faces
            .iter()
            .map(|f| (f.predicted_box(), f.score))
            .collect()
    }

    /// The detector ran and found no face: `frame` is the result at [`Self::predicted_boxes`],
    /// kept (true) where `tracked` would keep it; otherwise the caller gives the detector's
    /// result to `detected`.
    pub fn detector_missed(&mut self, frame: &FrameFaces) -> bool {
        if self.faces.is_empty() || self.tracked(frame) != Verdict::Keep {
            return false;
        }
        self.stats.detected += 1;
        true
    }

    /// Counts a detection that `plan` asked for.
    pub fn note_detection(&mut self, reason: DetectReason) {
        match reason {
            DetectReason::Periodic => self.stats.periodic += 1,
            DetectReason::Edge => self.stats.edge += 1,
            DetectReason::Moved => self.stats.moved += 1,
            DetectReason::Lost => self.stats.lost += 1,
            DetectReason::Disabled | DetectReason::NoFace => {}
        }
    }

    /// Takes the result of a frame the detector ran on.
    pub fn detected(&mut self, frame: &FrameFaces) {
        self.stats.detected += 1;
        self.next_frame += 1;
        self.faces = frame
            .faces
            .iter()
            .filter_map(|f| {
                let stable = stable_points(&f.landmarks)?;
                Some(Anchor {
                    detection: f.bbox,
                    score: f.score,
                    reference: stable.clone(),
                    last: stable,
                })
            })
            .collect();
    }

    /// Takes the result of a tracked frame (`frame.faces` in the order of the planned boxes);
    /// `Keep` accepts it, `Detect` asks for the detector on the same frame.
    pub fn tracked(&mut self, frame: &FrameFaces) -> Verdict {
        if frame.faces.len() != self.faces.len() {
            // A crop fell outside the frame: the face is leaving.
            return Verdict::Detect(DetectReason::Edge);
        }
        let mut updated = Vec::with_capacity(self.faces.len());
        for (anchor, face) in self.faces.iter().zip(&frame.faces) {
            let Some(stable) = stable_points(&face.landmarks) else {
                return Verdict::Detect(DetectReason::Lost);
            };
            if stable.iter().flatten().any(|v| !v.is_finite()) {
                return Verdict::Detect(DetectReason::Lost);
            }
            let step = fit(&anchor.last, &stable);
            let size = anchor
                .detection
                .width
                .max(anchor.detection.height)
                .max(1e-9);
            let shift = ((step.to[0] - step.from[0]).powi(2) + (step.to[1] - step.from[1]).powi(2))
                .sqrt()
                / size;
            if shift > self.options.max_shift
                || (step.scale - 1.0).abs() > self.options.max_scale_change
            {
                return Verdict::Detect(DetectReason::Moved);
            }
            if fit(&anchor.reference, &stable).error > self.options.max_shape_error {
                return Verdict::Detect(DetectReason::Lost);
            }
            updated.push(stable);
        }
        for (anchor, stable) in self.faces.iter_mut().zip(updated) {
            anchor.last = stable;
        }
        self.next_frame += 1;
        self.stats.tracked += 1;
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::{Expressions, Face};

    /// A made-up 68-point face: a grid of points inside the box.
    fn landmarks(x: f64, y: f64, size: f64) -> Vec<[f64; 2]> {
        (0..68)
            .map(|i| {
                let (col, row) = ((i % 9) as f64, (i / 9) as f64);
                [x + size * (0.1 + 0.1 * col), y + size * (0.1 + 0.1 * row)]
            })
            .collect()
    }

    fn face(x: f64, y: f64, size: f64) -> Face {
        let landmarks = landmarks(x, y, size);
        Face {
            bbox: PixelBox {
                x,
                y,
                width: size,
                height: size,
            },
            score: 0.9,
            aligned_box: PixelBox {
                x,
                y,
                width: size,
                height: size,
            },
            landmarks,
            expressions: Expressions::from_slice(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            brow_profiles: None,
            contour_contrast: None,
        }
    }

    fn frame(faces: Vec<Face>) -> FrameFaces {
        FrameFaces {
            width: 640,
            height: 360,
            faces,
        }
    }

    #[test]
    fn a_re_detection_interval_of_zero_means_every_frame() {
        // A page may pass redetectEvery 0; a chunk's start is checked against it with `%`.
        assert_eq!(TrackingOptions::with(true, Some(0)).redetect_every, 1);
        assert_eq!(TrackingOptions::with(true, Some(7)).redetect_every, 7);
    }

    #[test]
    fn follows_a_moving_face_and_detects_periodically() {
        let options = TrackingOptions {
            redetect_every: 4,
            ..TrackingOptions::default()
        };
        let mut tracker = FaceTracker::new(options);
        assert_eq!(tracker.plan(640, 360), Err(DetectReason::Periodic));
        tracker.detected(&frame(vec![face(200.0, 100.0, 100.0)]));
        // The head moves 5 px right per frame: the crop follows it.
        for step in 1..4 {
            let boxes = tracker.plan(640, 360).expect("tracked");
            assert!((boxes[0].0.x - (200.0 + 5.0 * (step - 1) as f64)).abs() < 1e-9);
            assert_eq!(boxes[0].0.width, 100.0);
            let verdict =
                tracker.tracked(&frame(vec![face(200.0 + 5.0 * step as f64, 100.0, 100.0)]));
            assert_eq!(verdict, Verdict::Keep);
        }
        assert_eq!(tracker.plan(640, 360), Err(DetectReason::Periodic));
        assert_eq!(tracker.stats().tracked, 3);
    }

    #[test]
    fn a_jump_or_a_lost_shape_asks_for_the_detector() {
        let mut tracker = FaceTracker::new(TrackingOptions::default());
        tracker.detected(&frame(vec![face(200.0, 100.0, 100.0)]));
        let jump = tracker.tracked(&frame(vec![face(240.0, 100.0, 100.0)]));
        assert_eq!(jump, Verdict::Detect(DetectReason::Moved));
        let grow = tracker.tracked(&frame(vec![face(195.0, 95.0, 120.0)]));
        assert_eq!(grow, Verdict::Detect(DetectReason::Moved));
        // Two eye corners pulled apart across the face: no scale + translation explains it.
        let mut scrambled = face(200.0, 100.0, 100.0);
        let stable = stable_points(&scrambled.landmarks).unwrap();
        let pull = 0.7 * spread(&stable, centroid(&stable));
        scrambled.landmarks[36][1] -= pull;
        scrambled.landmarks[45][1] += pull;
        assert_eq!(
            tracker.tracked(&frame(vec![scrambled])),
            Verdict::Detect(DetectReason::Lost)
        );
        assert_eq!(
            tracker.tracked(&frame(vec![])),
            Verdict::Detect(DetectReason::Edge)
        );
        // Nothing was accepted: the crop is still the detection's.
        assert_eq!(tracker.plan(640, 360).unwrap()[0].0.x, 200.0);
    }

    #[test]
    fn a_face_at_the_edge_or_tracking_off_goes_to_the_detector() {
        let mut tracker = FaceTracker::new(TrackingOptions::default());
        tracker.detected(&frame(vec![face(550.0, 100.0, 80.0)]));
        assert!(tracker.plan(640, 360).is_ok());
        assert_eq!(
            tracker.tracked(&frame(vec![face(561.0, 100.0, 80.0)])),
            Verdict::Keep
        );
        assert_eq!(tracker.plan(640, 360), Err(DetectReason::Edge));
        let mut off = FaceTracker::new(TrackingOptions::off());
        off.detected(&frame(vec![face(200.0, 100.0, 100.0)]));
        assert_eq!(off.plan(640, 360), Err(DetectReason::Disabled));
    }

    #[test]
    fn a_face_filling_the_frame_that_the_detector_misses_is_followed_while_its_shape_holds() {
        let mut tracker = FaceTracker::new(TrackingOptions::default());
        tracker.detected(&frame(vec![face(2.0, 2.0, 356.0)]));
        assert_eq!(tracker.plan(640, 360), Err(DetectReason::Edge));
        // The detector found nothing: the crop at the predicted box still holds the face.
        assert_eq!(tracker.predicted_boxes()[0].0.x, 2.0);
        assert!(tracker.detector_missed(&frame(vec![face(3.0, 2.0, 356.0)])));
        assert_eq!(tracker.stats().tracked, 1);
        assert_eq!(tracker.stats().detected, 2);
        // What the crop holds is no longer that face's shape: the face is gone.
        let mut scrambled = face(3.0, 2.0, 356.0);
        scrambled.landmarks[36][1] -= 150.0;
        scrambled.landmarks[45][1] += 150.0;
        assert!(!tracker.detector_missed(&frame(vec![scrambled])));
        assert!(!tracker.detector_missed(&frame(vec![])));
        tracker.detected(&frame(vec![]));
        assert_eq!(tracker.plan(640, 360), Err(DetectReason::NoFace));
        assert!(!tracker.detector_missed(&frame(vec![])));
    }

    #[test]
    fn options_refuse_absurd_numbers() {
        let bad = |f: fn(&mut TrackingOptions)| {
            let mut o = TrackingOptions::default();
            f(&mut o);
            o.validate().is_err()
        };
        assert!(TrackingOptions::default().validate().is_ok());
        assert!(bad(|o| o.redetect_every = 0));
        assert!(bad(|o| o.max_shift = f64::NAN));
        assert!(bad(|o| o.max_scale_change = -1.0));
        assert!(bad(|o| o.edge_margin = f64::INFINITY));
    }

    /// Plans and verdicts of a tracker over frames `range` of a clip whose face drifts, then
    /// jumps at frame 6 (a detection out of period).
    fn run(tracker: &mut FaceTracker, range: std::ops::Range<usize>) -> Vec<String> {
        range
            .map(|i| {
                let x = 200.0 + 3.0 * i as f64 + if i >= 6 { 60.0 } else { 0.0 };
                let seen = frame(vec![face(x, 100.0, 100.0)]);
                match tracker.plan(640, 360) {
                    Ok(_) => match tracker.tracked(&seen) {
                        Verdict::Keep => format!("{i} tracked"),
                        Verdict::Detect(reason) => {
                            tracker.detected(&seen);
                            format!("{i} {reason:?}")
                        }
                    },
                    Err(reason) => {
                        tracker.detected(&seen);
                        format!("{i} {reason:?}")
                    }
                }
            })
            .collect()
    }

    #[test]
    fn chunks_of_the_period_give_what_one_tracker_gives() {
        let options = TrackingOptions {
            redetect_every: 5,
            ..TrackingOptions::default()
        };
        let whole = run(&mut FaceTracker::new(options), 0..15);
        // The jump's detection at 6 does not move the period: 10 is periodic.
        assert_eq!(whole[6], "6 Moved");
        assert_eq!(whole[7], "7 tracked");
        assert_eq!(whole[10], "10 Periodic");
        let chunked: Vec<String> = [0..5, 5..10, 10..15]
            .into_iter()
            .flat_map(|r| run(&mut FaceTracker::starting_at(options, r.start), r))
            .collect();
        assert_eq!(chunked, whole);
    }
}
