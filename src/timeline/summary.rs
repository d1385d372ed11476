//! Per-stretch summaries for a VLM: between consecutive keyframes, the measured facts in
//! well-formed sentences: the classifier's labels (optional), the spotted movements, talking,
//! head turns, blinks.

use serde::{Deserialize, Serialize};

use super::Timeline;
use super::features::{FEATURE_NAMES, FEATURE_PHRASES};
use super::keyframes::{Keyframe, held_labels};
use super::pose::head_moves;
use super::speech::runs;
use super::spot::{Event, EventKind, Span, Spotting};
use crate::face::EXPRESSIONS;

/// Facts about one stretch between consecutive keyframes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StretchSummary {
    pub start_time: f64,
    pub end_time: f64,
    pub start_frame: usize,
    pub end_frame: usize,
    pub text: String,
}

fn feature_phrase(name: &str, change: f64) -> String {
    if let Some(k) = FEATURE_NAMES.iter().position(|n| *n == name) {
        if name.starts_with("eye_open") {
            let side = if name.ends_with("left") {
                "left"
            } else {
                "right"
            };
            return format!(
                "{side} eye {}",
                if change < 0.0 { "closing" } else { "widening" }
            );
        }
        return FEATURE_PHRASES[k].to_string();
    }
    match name.strip_prefix("expression:") {
        Some(class) => format!("rise of {class}"),
        None => name.to_string(),
    }
}

/// "brief left lip-corner pull and right lip-corner pull (apex 1.32 s, 0.28 s, micro)"
pub fn describe_event(e: &Event) -> String {
    describe_event_with(e, true)
}

/// [`describe_event`]; without `labels` the classifier's words are left out.
pub fn describe_event_with(e: &Event, labels: bool) -> String {
    let moves: Vec<String> = e
        .moves
        .iter()
        .filter(|m| !m.name.starts_with("expression:"))
        .take(3)
        .map(|m| feature_phrase(&m.name, m.peak_change))
        .collect();
    let what = if moves.is_empty() {
        e.moves
            .first()
            .map(|m| feature_phrase(&m.name, m.peak_change))
            .unwrap_or_else(|| "movement".into())
    } else {
        moves.join(", ")
    };
    let adjective = match e.kind {
        EventKind::Micro => "brief",
        EventKind::Macro => "sustained",
    };
    let kind = match e.kind {
        EventKind::Micro => "micro",
        EventKind::Macro => "macro",
    };
    let cut = if e.cut_off {
        ", still active when the face or clip ends"
    } else {
        ""
    };
    let mut s = format!(
        "{:.2}–{:.2} s: {adjective} {what} (apex {:.2} s, {:.2} s, {kind}{cut})",
        e.onset_time, e.offset_time, e.apex_time, e.duration
    );
    if labels && !e.expression_sequence.is_empty() {
        s.push_str("; ");
        s.push_str(&e.expression_sequence.join(" → "));
    }
    if let Some((label, p)) = e.apex_expression.as_ref().filter(|_| labels) {
        s.push_str(&format!(" ({label} {p:.2} at apex)"));
    }
    s
}

/// What the summaries say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryOptions {
    /// Include the expression classifier's labels; without them the summaries report movements
    /// only (so a study can tell what a VLM adds to the measurements).
    pub labels: bool,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self { labels: true }
    }
}

fn capitalised(s: String) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

pub fn summarise(
    timeline: &Timeline,
    spotting: &Spotting,
    keyframes: &[Keyframe],
) -> Vec<StretchSummary> {
    summarise_with(timeline, spotting, keyframes, &SummaryOptions::default())
}

/// One summary per stretch between keyframes: labels (optional), movements, talking, head pose,
/// blinks.
pub fn summarise_with(
    timeline: &Timeline,
    spotting: &Spotting,
    keyframes: &[Keyframe],
    options: &SummaryOptions,
) -> Vec<StretchSummary> {
    let head_moves = head_moves(timeline);
    // While talking, the classifier's labels count where they hold (as for spotting).
    let held = held_labels(timeline, spotting);
    let records = &timeline.records;
    let covered = runs(&records.iter().map(|r| r.mouth_covered).collect::<Vec<_>>());
    if records.is_empty() {
        return Vec::new();
    }
    let frame_s = 1.0 / timeline.fps;
    let mut bounds: Vec<usize> = keyframes.iter().map(|k| k.record).collect();
    if bounds.first() != Some(&0) {
        bounds.insert(0, 0);
    }
    bounds.push(records.len());
    bounds.dedup();
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1] - 1);
        let (t0, t1) = (records[a].time, records[b].time + frame_s);
        let mut sentences: Vec<String> = Vec::new();
        let seen: Vec<usize> = (a..=b).filter(|&i| records[i].main_face()).collect();
        // The labels of a face with its mouth covered are guesses.
        let visible: Vec<usize> = seen
            .iter()
            .copied()
            .filter(|&i| !records[i].mouth_covered)
            .collect();
        let head = format!("{t0:.2}–{t1:.2} s:");
        if visible.is_empty() {
            let any = (a..=b).any(|i| records[i].face_present);
            sentences.push(if !seen.is_empty() {
                format!("{head} face with the mouth covered (a hand or an object in front of it)")
            } else if any {
                format!("{head} main face not visible (another face is)")
            } else {
                format!("{head} no face visible")
            });
        } else {
            // The held classes in order, each run once.
            let mut labels: Vec<usize> = Vec::new();
            for &i in &visible {
                if let Some(l) = held[i]
                    && labels.last() != Some(&l)
                {
                    labels.push(l);
                }
            }
            let mean = |k: usize| {
                visible
                    .iter()
                    .filter_map(|&i| records[i].expressions.map(|p| p[k]))
                    .sum::<f64>()
                    / visible.len() as f64
            };
            let mut s = if !options.labels {
                format!("{head} face visible")
            } else if let [l0] = labels[..] {
                // While talking the label may be one held from before through the words'
                // flicker: where another class reads higher on average, say both.
                let means: Vec<f64> = (0..EXPRESSIONS.len()).map(mean).collect();
                let top = (0..means.len())
                    .max_by(|&x, &y| means[x].total_cmp(&means[y]))
                    .unwrap_or(l0);
                let label = EXPRESSIONS[l0];
                if means[top] > means[l0] {
                    format!(
                        "{head} {label} as before, the classifier flickering with the words (mean {label} {:.2}, {} {:.2})",
                        means[l0], EXPRESSIONS[top], means[top]
                    )
                } else {
                    format!("{head} {label} (mean {:.2})", means[l0])
                }
            } else {
                let names: Vec<&str> = labels.iter().map(|&l| EXPRESSIONS[l]).collect();
                format!("{head} {}", names.join(" → "))
            };
            if seen.len() < b - a + 1 {
                let (first, last) = (seen[0], *seen.last().unwrap());
                // Lost only in between: say so, not a visible range equal to the stretch.
                let clause = if first == a && last == b {
                    format!("face lost for {} frame(s)", b - a + 1 - seen.len())
                } else {
                    format!(
                        "face visible {:.2}–{:.2} s only",
                        records[first].time,
                        records[last].time + frame_s
                    )
                };
                s.push_str("; ");
                s.push_str(&clause);
            }
            // Without labels, an event only the classifier saw has nothing left to say.
            let events: Vec<&Event> = spotting
                .events
                .iter()
                .filter(|e| e.onset_time < t1 && e.offset_time + frame_s > t0)
                .filter(|e| {
                    options.labels || e.moves.iter().any(|m| !m.name.starts_with("expression:"))
                })
                .collect();
            if events.is_empty() {
                s.push_str("; no facial movement above the person's baseline");
                sentences.push(s);
            } else {
                sentences.push(s);
                // Each event in full once, in the stretch where it starts; elsewhere a pointer.
                for e in events {
                    if e.onset_time >= t0 {
                        sentences.push(describe_event_with(e, options.labels));
                    } else if e.apex_time >= t0 && e.apex_time < t1 {
                        sentences.push(format!(
                            "apex at {:.2} s of the movement that began at {:.2} s",
                            e.apex_time, e.onset_time
                        ));
                    } else {
                        sentences.push(format!(
                            "movement that began at {:.2} s continues",
                            e.onset_time
                        ));
                    }
                }
            }
            let blinks = spotting
                .blinks
                .iter()
                .filter(|b| b.start_time < t1 && b.end_time > t0)
                .count();
            if blinks > 0 {
                sentences.push(format!("{blinks} blink(s)"));
            }
            let within =
                |sp: &Span| format!("{:.2}–{:.2} s", sp.start_time.max(t0), sp.end_time.min(t1));
            for t in spotting
                .talking
                .iter()
                .filter(|t| t.start_time < t1 && t.end_time > t0)
            {
                sentences.push(format!("talking {}", within(t)));
            }
            for &(s, e) in covered.iter().filter(|&&(s, e)| s <= b && e >= a) {
                let span = |i: usize| records[i].time;
                sentences.push(format!(
                    "mouth covered (a hand or an object in front of it) {:.2}–{:.2} s",
                    span(s).max(t0),
                    (span(e) + frame_s).min(t1)
                ));
            }
            for (m, phrase) in head_moves
                .iter()
                .filter(|(m, _)| m.start_time < t1 && m.end_time > t0)
            {
                sentences.push(format!("{phrase} {}", within(m)));
            }
        }
        out.push(StretchSummary {
            start_time: t0,
            end_time: t1,
            start_frame: records[a].index,
            end_frame: records[b].index,
            text: sentences
                .into_iter()
                .map(capitalised)
                .collect::<Vec<_>>()
                .join(". ")
                + ".",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::FrameRecord;
    use crate::timeline::features::tests::synthetic_face;
    use crate::timeline::spot::ChannelMove;

    fn clip() -> (Timeline, Spotting) {
        let records = (0..90)
            .map(|i| {
                let mut face = synthetic_face();
                if (30..60).contains(&i) {
                    // Nose towards the image's right: the head turned to the person's left.
                    for q in &mut face[27..36] {
                        q[0] += 0.2;
                    }
                }
                FrameRecord::visible(
                    i,
                    Some(face),
                    [0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],
                    [0.0; crate::timeline::NUM_FEATURES],
                )
            })
            .collect();
        let timeline = Timeline::of_records(records);
        let span = |a: usize, b: usize| Span {
            start_time: a as f64 / 30.0,
            end_time: (b + 1) as f64 / 30.0,
            start_frame: a,
            end_frame: b,
        };
        let mv = |name: &str| ChannelMove {
            name: name.into(),
            peak_activation: 8.0,
            peak_change: 0.1,
            peak_time: 2.0,
        };
        let spotting = Spotting {
            events: vec![Event {
                onset_time: 65.0 / 30.0,
                apex_time: 70.0 / 30.0,
                offset_time: 75.0 / 30.0,
                onset_frame: 65,
                apex_frame: 70,
                offset_frame: 75,
                duration: 11.0 / 30.0,
                kind: EventKind::Micro,
                moves: vec![mv("expression:happy"), mv("lip_corner_pull_left")],
                apex_expression: Some(("happy".into(), 0.8)),
                expression_sequence: vec!["neutral".into(), "happy".into()],
                cut_off: false,
            }],
            blinks: Vec::new(),
            talking: vec![span(10, 25)],
            baseline_frames: 90,
            baseline_neutral: true,
        };
        (timeline, spotting)
    }

    /// Keyframes at `base_fps` plus apexes and states, no cap.
    fn keyframes_at(timeline: &Timeline, spotting: &Spotting, base_fps: f64) -> Vec<Keyframe> {
        let options = crate::timeline::KeyframeOptions {
            base_fps,
            max_keyframes: None,
            sampling: Default::default(),
        };
        crate::timeline::keyframes::select_keyframes(timeline, spotting, &options)
    }

    #[test]
    fn summaries_say_talking_and_head_turns_in_capitalised_sentences() {
        let (timeline, spotting) = clip();
        let text = &summarise(&timeline, &spotting, &[])[0].text;
        assert!(text.contains("Talking 0.33–0.87 s"), "{text}");
        assert!(
            text.contains("Head turned to the person's left 1.00–2.00 s"),
            "{text}"
        );
        assert!(text.contains("neutral") && text.contains("happy"), "{text}");
        for sentence in text.split(". ") {
            let first = sentence.chars().next().unwrap();
            assert!(first.is_uppercase() || first.is_ascii_digit(), "{sentence}");
        }
    }

    #[test]
    fn while_talking_a_label_counts_only_where_it_holds() {
        let (mut timeline, spotting) = clip();
        // "Surprised" for 2 frames inside the talking span (an open vowel) and for 2 frames
        // outside it (a brief rare state).
        for i in [14, 15, 40, 41] {
            timeline.records[i].expressions = Some([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9]);
        }
        let held = held_labels(&timeline, &spotting);
        assert_eq!(
            held[14],
            Some(0),
            "flicker in speech reads as the class held before"
        );
        assert_eq!(held[15], Some(0));
        assert_eq!(held[40], Some(6), "outside speech a brief state stays");
        let keyframes = keyframes_at(&timeline, &spotting, 0.0);
        let states: Vec<usize> = keyframes
            .iter()
            .filter(|k| k.reason == crate::timeline::keyframes::KeyframeReason::State)
            .map(|k| k.frame)
            .collect();
        assert_eq!(states, vec![40], "{keyframes:?}");
        let text = &summarise(&timeline, &spotting, &[])[0].text;
        assert_eq!(text.matches("surprised").count(), 1, "{text}");
    }

    #[test]
    fn a_clip_that_starts_mid_sentence_reads_its_first_flicker_as_the_class_that_holds_next() {
        let (mut timeline, mut spotting) = clip();
        spotting.talking[0].start_frame = 0;
        spotting.talking[0].start_time = 0.0;
        // Sad and happy by turns, 2 frames each, for the first 6 frames (the mouth mid-word), then
        // neutral.
        for i in 0..6 {
            let p = if (i / 2) % 2 == 0 {
                [0.1, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0]
            } else {
                [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0]
            };
            timeline.records[i].expressions = Some(p);
        }
        let held = held_labels(&timeline, &spotting);
        assert!(held[..6].iter().all(|&l| l == Some(0)), "{:?}", &held[..6]);
        let keyframes = keyframes_at(&timeline, &spotting, 0.0);
        assert!(
            keyframes
                .iter()
                .all(|k| k.reason != crate::timeline::keyframes::KeyframeReason::State),
            "{keyframes:?}"
        );
    }

    /// The summary of the stretch between the keyframes at 0.33 s and 0.67 s (the talking span).
    fn talking_stretch(timeline: &Timeline, spotting: &Spotting) -> String {
        let keyframes = keyframes_at(timeline, spotting, 3.0);
        summarise(timeline, spotting, &keyframes)
            .into_iter()
            .find(|s| s.text.starts_with("0.33–0.67 s:"))
            .unwrap()
            .text
    }

    #[test]
    fn while_talking_the_class_most_frames_read_is_the_reading() {
        let (mut timeline, spotting) = clip();
        // In the talking span (frames 10–25) sad for 2 frames in every 3: never for 0.3 s at a
        // stretch, but the reading all the same.
        for i in 10..=25 {
            if i % 3 != 0 {
                timeline.records[i].expressions = Some([0.2, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0]);
            }
        }
        let held = held_labels(&timeline, &spotting);
        assert!(held[10..=25].iter().all(|&l| l == Some(2)), "{held:?}");
        assert_eq!(held[9], Some(0));
        let stretch = talking_stretch(&timeline, &spotting);
        assert!(
            stretch.starts_with("0.33–0.67 s: sad (mean 0.5"),
            "{stretch}"
        );
    }

    #[test]
    fn a_label_held_through_flicker_is_not_given_as_the_reading() {
        let (mut timeline, spotting) = clip();
        // In the talking span neutral is highest in 2 frames of every 3, but only just; the third
        // reads sad strongly, so sad reads higher on average.
        for i in 10..=25 {
            timeline.records[i].expressions = Some(if i % 3 == 0 {
                [0.1, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0]
            } else {
                [0.4, 0.25, 0.35, 0.0, 0.0, 0.0, 0.0]
            });
        }
        let stretch = talking_stretch(&timeline, &spotting);
        assert!(
            stretch.contains(
                "neutral as before, the classifier flickering with the words (mean neutral 0.3"
            ) && stretch.contains("sad 0.5"),
            "{stretch}"
        );
    }

    #[test]
    fn movements_only_leaves_the_classifier_out() {
        let (timeline, spotting) = clip();
        let options = SummaryOptions { labels: false };
        let text = &summarise_with(&timeline, &spotting, &[], &options)[0].text;
        for label in EXPRESSIONS {
            assert!(!text.contains(label), "{label} in {text}");
        }
        assert!(text.contains("left lip-corner pull"), "{text}");
        assert!(text.contains("Talking"), "{text}");
    }

    #[test]
    fn a_covered_mouth_is_said_and_its_guessed_labels_are_not() {
        let (mut timeline, spotting) = clip();
        // Frames 0-29 read neutral; under the hand (frames 36-47) the classifier reads angry.
        for r in &mut timeline.records[36..48] {
            r.mouth_covered = true;
            r.expressions = Some([0.1, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0]);
        }
        let summaries = summarise(&timeline, &spotting, &[]);
        let text = &summaries[0].text;
        assert!(
            text.contains("Mouth covered (a hand or an object in front of it) 1.20–1.60 s"),
            "{text}"
        );
        assert!(!text.contains("angry"), "{text}");
        assert!(!text.contains("face lost"), "{text}");
        // Nor is a guessed angry face a rare state worth a keyframe.
        let keyframes = keyframes_at(&timeline, &spotting, 1.0);
        assert!(
            keyframes
                .iter()
                .all(|k| k.reason != crate::timeline::keyframes::KeyframeReason::State),
            "{keyframes:?}"
        );
        for r in &mut timeline.records[36..48] {
            r.mouth_covered = false;
        }
        let keyframes = keyframes_at(&timeline, &spotting, 1.0);
        assert!(
            keyframes
                .iter()
                .any(|k| k.reason == crate::timeline::keyframes::KeyframeReason::State),
            "{keyframes:?}"
        );
    }
}
