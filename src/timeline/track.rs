//! Face tracking across frames: detections are linked to tracks by box overlap (or, for fast
//! motion, by centre distance), so each person keeps one id for the whole clip, including after
//! the detector misses them for a while.

use serde::{Deserialize, Serialize};

use crate::face::PixelBox;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TrackerOptions {
    /// Minimum IoU for an overlap match.
    pub min_iou: f64,
    /// Without overlap, a detection whose centre is within this many box sizes of a track's last
    /// box still continues it (fast head motion, dropped frames).
    pub max_centre_distance: f64,
    /// A track not seen for this long (seconds) is closed; a face appearing later is a new id.
    pub max_missing_s: f64,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        Self {
            min_iou: 0.3,
            max_centre_distance: 0.6,
            max_missing_s: 1.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    id: u32,
    last_box: PixelBox,
    last_time: f64,
}

/// Online tracker: feed it each frame's boxes in order.
#[derive(Debug, Clone)]
pub struct Tracker {
    options: TrackerOptions,
    tracks: Vec<Track>,
    next_id: u32,
}

fn centre(b: &PixelBox) -> (f64, f64) {
    (b.x + b.width / 2.0, b.y + b.height / 2.0)
}

impl Tracker {
    pub fn new(options: TrackerOptions) -> Self {
        Self {
            options,
            tracks: Vec::new(),
            next_id: 0,
        }
    }

    /// Match score of a track and a detection; `None` when they cannot be the same face.
    fn affinity(&self, track: &PixelBox, detection: &PixelBox) -> Option<f64> {
        let iou = track.iou(detection);
        if iou >= self.options.min_iou {
            return Some(1.0 + iou);
        }
        let (a, b) = (centre(track), centre(detection));
        let size =
            ((track.width + track.height + detection.width + detection.height) / 4.0).max(1e-9);
        let d = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt() / size;
        // Similar size too, so that a passer-by next to the face does not steal its id.
        let ratio = (track.width * track.height) / (detection.width * detection.height).max(1e-9);
        (d <= self.options.max_centre_distance && (0.5..=2.0).contains(&ratio))
            .then_some(1.0 - d / self.options.max_centre_distance)
    }

    /// Ids for this frame's detections, in their order.
    pub fn update(&mut self, time: f64, boxes: &[PixelBox]) -> Vec<u32> {
        let max_missing = self.options.max_missing_s;
        self.tracks.retain(|t| time - t.last_time <= max_missing);
        // Greedy assignment, best pairs first: optimal enough for the few faces in a video.
        let mut pairs = Vec::new();
        for (ti, track) in self.tracks.iter().enumerate() {
            for (di, b) in boxes.iter().enumerate() {
                if let Some(score) = self.affinity(&track.last_box, b) {
                    pairs.push((score, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ids = vec![None; boxes.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if used[ti] || ids[di].is_some() {
                continue;
            }
            used[ti] = true;
            ids[di] = Some(self.tracks[ti].id);
            self.tracks[ti].last_box = boxes[di];
            self.tracks[ti].last_time = time;
        }
        ids.into_iter()
            .zip(boxes)
            .map(|(id, b)| {
                id.unwrap_or_else(|| {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        last_box: *b,
                        last_time: time,
                    });
                    id
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f64, y: f64, s: f64) -> PixelBox {
        PixelBox {
            x,
            y,
            width: s,
            height: s,
        }
    }

    #[test]
    fn two_faces_keep_their_ids_while_moving() {
        let mut t = Tracker::new(TrackerOptions::default());
        let first = t.update(0.0, &[b(0.0, 0.0, 100.0), b(300.0, 0.0, 100.0)]);
        assert_eq!(first, vec![0, 1]);
        for k in 1..20 {
            let dx = 5.0 * k as f64;
            // Listed in the other order: ids follow the boxes, not the list position.
            let ids = t.update(
                k as f64 / 30.0,
                &[b(300.0 - dx, 0.0, 100.0), b(dx, 0.0, 100.0)],
            );
            assert_eq!(ids, vec![1, 0]);
        }
    }

    #[test]
    fn a_face_missed_briefly_keeps_its_id_and_a_late_one_gets_a_new_id() {
        let mut t = Tracker::new(TrackerOptions::default());
        assert_eq!(t.update(0.0, &[b(0.0, 0.0, 100.0)]), vec![0]);
        assert_eq!(t.update(0.1, &[]), Vec::<u32>::new());
        // Re-detected 0.5 s later, having moved without overlap: centre distance links it.
        assert_eq!(t.update(0.5, &[b(50.0, 10.0, 100.0)]), vec![0]);
        // Gone for longer than max_missing: a new person as far as we can tell.
        assert_eq!(t.update(2.0, &[b(50.0, 10.0, 100.0)]), vec![1]);
        // A far-away face is a second track, not a jump of the first.
        assert_eq!(
            t.update(2.1, &[b(50.0, 10.0, 100.0), b(500.0, 0.0, 100.0)]),
            vec![1, 2]
        );
    }
}
