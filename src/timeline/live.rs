//! The drop policy of live analysis when frames are analysed elsewhere (a Web Worker): the page
//! is told, frame by frame, what to do with what the camera presents. Nothing queues: one frame
//! is analysed at a time and only the newest waits; the frames it replaces, and those the camera
//! presented unseen, are dropped and counted. A plain state machine, so that the page
//! (`www/live.js`) only carries out its answers.

use serde::Serialize;

/// What to do with a frame the camera just presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum OnPresented {
    /// Send it for analysis now, with the frames dropped since the last one sent.
    Send { dropped: usize },
    /// Keep it as the waiting frame (releasing the one it replaces, if any).
    Wait { replaces: bool },
    /// The session is stopping: release it.
    Ignore,
}

/// What to do when the frame in flight has been analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum OnAnalysed {
    /// Send the waiting frame.
    SendWaiting { dropped: usize },
    /// Nothing waits: send the next presented frame as soon as it comes.
    Idle,
    /// The session was stopped: ask for the report.
    Finish { dropped: usize },
}

/// What to do when the session is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum OnStop {
    /// Ask for the report now (release any waiting frame).
    Finish {
        dropped: usize,
        release_waiting: bool,
    },
    /// A frame is in flight: finish when it is analysed (release any waiting frame).
    AfterInFlight { release_waiting: bool },
    /// Already stopping.
    Nothing,
}

#[derive(Debug, Clone, Default)]
pub struct LivePolicy {
    in_flight: bool,
    waiting: bool,
    stopping: bool,
    /// Dropped since the last frame sent.
    dropped: usize,
    last_presented: Option<u64>,
}

impl LivePolicy {
    pub fn new() -> Self {
        Self::default()
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
        let replaces = self.waiting;
        self.dropped += usize::from(replaces);
        self.waiting = true;
        OnPresented::Wait { replaces }
    }

    /// The frame in flight has been analysed.
    pub fn analysed(&mut self) -> OnAnalysed {
        self.in_flight = false;
        if self.stopping {
            return OnAnalysed::Finish {
                dropped: std::mem::take(&mut self.dropped),
            };
        }
        if std::mem::take(&mut self.waiting) {
            self.in_flight = true;
            return OnAnalysed::SendWaiting {
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
        let release_waiting = std::mem::take(&mut self.waiting);
        self.dropped += usize::from(release_waiting);
        if self.in_flight {
            OnStop::AfterInFlight { release_waiting }
        } else {
            OnStop::Finish {
                dropped: std::mem::take(&mut self.dropped),
                release_waiting,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_flight_the_newest_waits_the_rest_is_counted() {
        let mut p = LivePolicy::new();
        assert_eq!(p.presented(1), OnPresented::Send { dropped: 0 });
        assert_eq!(p.presented(2), OnPresented::Wait { replaces: false });
        assert_eq!(p.presented(3), OnPresented::Wait { replaces: true });
        // Frames 4 and 5 were never seen (the page was busy): counted too.
        assert_eq!(p.presented(6), OnPresented::Wait { replaces: true });
        // 2, 3 replaced; 4, 5 unseen.
        assert_eq!(p.analysed(), OnAnalysed::SendWaiting { dropped: 4 });
        assert_eq!(p.analysed(), OnAnalysed::Idle);
        assert_eq!(p.presented(7), OnPresented::Send { dropped: 0 });
    }

    #[test]
    fn stopping_waits_for_the_frame_in_flight_and_loses_no_count() {
        let mut p = LivePolicy::new();
        assert_eq!(p.presented(10), OnPresented::Send { dropped: 0 });
        assert_eq!(p.presented(12), OnPresented::Wait { replaces: false });
        assert_eq!(
            p.stop(),
            OnStop::AfterInFlight {
                release_waiting: true
            }
        );
        assert_eq!(p.stop(), OnStop::Nothing);
        assert_eq!(p.presented(13), OnPresented::Ignore);
        // 11 unseen, 12 released at the stop.
        assert_eq!(p.analysed(), OnAnalysed::Finish { dropped: 2 });

        let mut idle = LivePolicy::new();
        assert_eq!(idle.presented(1), OnPresented::Send { dropped: 0 });
        assert_eq!(idle.analysed(), OnAnalysed::Idle);
        assert_eq!(
            idle.stop(),
            OnStop::Finish {
                dropped: 0,
                release_waiting: false
            }
        );
    }

    #[test]
    fn answers_as_the_page_reads_them() {
        let json = |v: serde_json::Value| v.to_string();
        let send = serde_json::to_value(OnPresented::Send { dropped: 2 }).unwrap();
        assert_eq!(json(send), r#"{"action":"send","dropped":2}"#);
        let waiting = serde_json::to_value(OnAnalysed::SendWaiting { dropped: 1 }).unwrap();
        assert_eq!(json(waiting), r#"{"action":"sendWaiting","dropped":1}"#);
        let stop = serde_json::to_value(OnStop::AfterInFlight {
            release_waiting: true,
        })
        .unwrap();
        assert_eq!(
            json(stop),
            r#"{"action":"afterInFlight","releaseWaiting":true}"#
        );
    }

    #[test]
    fn a_counter_that_goes_back_counts_nothing() {
        let mut p = LivePolicy::new();
        assert_eq!(p.presented(100), OnPresented::Send { dropped: 0 });
        assert_eq!(p.analysed(), OnAnalysed::Idle);
        assert_eq!(p.presented(5), OnPresented::Send { dropped: 0 });
    }
}
