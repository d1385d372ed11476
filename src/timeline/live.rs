//! The drop policy of live analysis when frames are analysed elsewhere (a Web Worker): the page
//! is told, frame by frame, what to do with what the camera presents. One frame is analysed at a
//! time and up to `queue_limit` wait in order, so that the detector's slower frames (every
//! `redetectEvery` frames) are caught up on the tracked frames after them instead of being lost;
//! when the queue is full its oldest frame is dropped (latency stays bounded), and frames the
//! camera presented unseen are counted too. Stopping analyses what already waits, then finishes:
//! a frame captured before the stop is not lost. A plain state machine, so that the page
//! (`www/live.js`) only carries out its answers.

use serde::Serialize;

/// What to do with a frame the camera just presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum OnPresented {
    /// Send it for analysis now, with the frames dropped since the last one sent.
    Send { dropped: usize },
    /// Put it at the end of the queue; first release the oldest queued frame if `drops_oldest`.
    Queue { drops_oldest: bool },
    /// The session is stopping: release it.
    Ignore,
}

/// What to do when the frame in flight has been analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum OnAnalysed {
    /// Send the oldest queued frame.
    SendNext { dropped: usize },
    /// Nothing waits: send the next presented frame as soon as it comes.
    Idle,
    /// The session was stopped and nothing waits: ask for the report.
    Finish { dropped: usize },
}

/// What to do when the session is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum OnStop {
    /// Ask for the report now.
    Finish { dropped: usize },
    /// Frames are in flight or queued: they are analysed first ([`OnAnalysed`] finishes).
    Drain,
    /// Already stopping.
    Nothing,
}

/// Frames that may wait by default: 8 frames are 0.27 s at 30 fps, enough to catch up after a
/// detector frame (about three frame intervals in the page on a 2-core machine).
pub const DEFAULT_QUEUE_LIMIT: usize = 8;

#[derive(Debug, Clone)]
pub struct LivePolicy {
    queue_limit: usize,
    in_flight: bool,
    queued: usize,
    stopping: bool,
    /// Dropped since the last frame sent.
    dropped: usize,
    last_presented: Option<u64>,
}

impl Default for LivePolicy {
    fn default() -> Self {
        Self::new(DEFAULT_QUEUE_LIMIT)
    }
}

impl LivePolicy {
    /// At most `queue_limit` frames wait (0 is taken as 1: the newest frame always waits).
    pub fn new(queue_limit: usize) -> Self {
        Self {
            queue_limit: queue_limit.max(1),
            in_flight: false,
            queued: 0,
            stopping: false,
            dropped: 0,
            last_presented: None,
        }
    }

    /// The camera presented a frame; `presented_frames` is its running count
    /// (`requestVideoFrameCallback`'s `presentedFrames`), whose gaps are frames never seen.
    pub fn presented(&mut self, presented_frames: u64) -> OnPresented {
        if self.stopping {
            return OnPresented::Ignore;
        }
        if let Some(last) = self.last_presented {
            self.dropped += presented_frames.saturating_sub(last).saturating_sub(1) as usize;
        }
        self.last_presented = Some(presented_frames);
        if !self.in_flight {
            self.in_flight = true;
            return OnPresented::Send {
                dropped: std::mem::take(&mut self.dropped),
            };
        }
        let drops_oldest = self.queued == self.queue_limit;
        if drops_oldest {
            self.dropped += 1;
        } else {
            self.queued += 1;
        }
        OnPresented::Queue { drops_oldest }
    }

    /// The frame in flight has been analysed.
    pub fn analysed(&mut self) -> OnAnalysed {
        self.in_flight = false;
        if self.queued > 0 {
            self.queued -= 1;
            self.in_flight = true;
            return OnAnalysed::SendNext {
                dropped: std::mem::take(&mut self.dropped),
            };
        }
        if self.stopping {
            return OnAnalysed::Finish {
                dropped: std::mem::take(&mut self.dropped),
            };
        }
        OnAnalysed::Idle
    }

    /// The user stopped the session (or the video ended).
    pub fn stop(&mut self) -> OnStop {
        if self.stopping {
            return OnStop::Nothing;
        }
        self.stopping = true;
        if self.in_flight {
            OnStop::Drain
        } else {
            OnStop::Finish {
                dropped: std::mem::take(&mut self.dropped),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_queue_in_order_and_the_oldest_goes_when_full() {
        let mut p = LivePolicy::new(2);
        assert_eq!(p.presented(1), OnPresented::Send { dropped: 0 });
        let queue = OnPresented::Queue {
            drops_oldest: false,
        };
        assert_eq!(p.presented(2), queue);
        assert_eq!(p.presented(3), queue);
        // Full: 2 goes, 4 joins; 5 never seen.
        let full = OnPresented::Queue { drops_oldest: true };
        assert_eq!(p.presented(4), full);
        assert_eq!(p.presented(6), full);
        // 2 and 3 dropped from the queue, 5 unseen: counted with the next frame sent (4).
        assert_eq!(p.analysed(), OnAnalysed::SendNext { dropped: 3 });
        assert_eq!(p.analysed(), OnAnalysed::SendNext { dropped: 0 });
        assert_eq!(p.analysed(), OnAnalysed::Idle);
        assert_eq!(p.presented(7), OnPresented::Send { dropped: 0 });
    }

    /// Frames dropped at 30 fps when every 15th frame takes 80 ms and the others 20 ms.
    fn dropped_with_a_slow_detector_frame(queue_limit: usize) -> usize {
        let cost = |frame: u64| if frame.is_multiple_of(15) { 80.0 } else { 20.0 };
        let mut p = LivePolicy::new(queue_limit);
        let mut queue = std::collections::VecDeque::new();
        let mut in_flight: Option<f64> = None; // when the frame in flight is done
        let mut dropped = 0;
        for frame in 0..300u64 {
            let now = frame as f64 * 1000.0 / 30.0;
            while let Some(done) = in_flight.filter(|done| *done <= now) {
                in_flight = None;
                if let OnAnalysed::SendNext { dropped: d } = p.analysed() {
                    dropped += d;
                    let next = queue.pop_front().expect("the policy counted it");
                    in_flight = Some(done + cost(next));
                }
            }
            match p.presented(frame) {
                OnPresented::Send { dropped: d } => {
                    dropped += d;
                    in_flight = Some(now + cost(frame));
                }
                OnPresented::Queue { drops_oldest } => {
                    if drops_oldest {
                        queue.pop_front();
                    }
                    queue.push_back(frame);
                }
                OnPresented::Ignore => unreachable!(),
            }
        }
        dropped + p.dropped
    }

    #[test]
    fn the_queue_catches_up_after_a_slow_frame() {
        assert_eq!(dropped_with_a_slow_detector_frame(DEFAULT_QUEUE_LIMIT), 0);
        // Only the newest waiting (no queue): every slow frame costs frames.
        assert!(dropped_with_a_slow_detector_frame(1) >= 15);
    }

    #[test]
    fn stopping_analyses_what_waits_then_finishes() {
        let mut p = LivePolicy::new(4);
        assert_eq!(p.presented(10), OnPresented::Send { dropped: 0 });
        let queued = OnPresented::Queue {
            drops_oldest: false,
        };
        assert_eq!(p.presented(12), queued);
        assert_eq!(p.stop(), OnStop::Drain);
        assert_eq!(p.stop(), OnStop::Nothing);
        assert_eq!(p.presented(13), OnPresented::Ignore);
        // 11 unseen: counted with 12, which is still analysed.
        assert_eq!(p.analysed(), OnAnalysed::SendNext { dropped: 1 });
        assert_eq!(p.analysed(), OnAnalysed::Finish { dropped: 0 });

        let mut idle = LivePolicy::default();
        assert_eq!(idle.presented(1), OnPresented::Send { dropped: 0 });
        assert_eq!(idle.analysed(), OnAnalysed::Idle);
        assert_eq!(idle.stop(), OnStop::Finish { dropped: 0 });
    }

    #[test]
    fn answers_as_the_page_reads_them() {
        let json = |v: serde_json::Value| v.to_string();
        let send = serde_json::to_value(OnPresented::Send { dropped: 2 }).unwrap();
        assert_eq!(json(send), r#"{"action":"send","dropped":2}"#);
        let queue = serde_json::to_value(OnPresented::Queue { drops_oldest: true }).unwrap();
        assert_eq!(json(queue), r#"{"action":"queue","dropsOldest":true}"#);
        let next = serde_json::to_value(OnAnalysed::SendNext { dropped: 1 }).unwrap();
        assert_eq!(json(next), r#"{"action":"sendNext","dropped":1}"#);
        let stop = serde_json::to_value(OnStop::Drain).unwrap();
        assert_eq!(json(stop), r#"{"action":"drain"}"#);
    }

    #[test]
    fn a_counter_that_goes_back_counts_nothing() {
        let mut p = LivePolicy::default();
        assert_eq!(p.presented(100), OnPresented::Send { dropped: 0 });
        assert_eq!(p.analysed(), OnAnalysed::Idle);
        assert_eq!(p.presented(5), OnPresented::Send { dropped: 0 });
    }
}
