//! The flow fed events by hand: which queries it sends, when, and what it decides.

use super::*;
use crate::prompt::{Keyframe, Part, Segment};
use crate::remote::response::Completion;

fn labels() -> LabelSet {
    LabelSet::custom(&["happy", "sad", "fear"], None).unwrap()
}

fn clip() -> ClipContext {
    let keyframe = |time| Keyframe {
        time,
        width: 2,
        height: 2,
        jpeg: vec![0xff, 0xd8, 1, 2],
    };
    let segment = |start: f64, end: f64, keyframe| Segment {
        start,
        end,
        summary: format!("{start:.2}–{end:.2} s: lip corners rose."),
        description: None,
        keyframe,
    };
    ClipContext {
        duration: 2.0,
        fps: 30.0,
        frames: 60,
        frame_width: 2,
        frame_height: 2,
        keyframes: vec![keyframe(0.5), keyframe(1.5)],
        segments: vec![segment(0.0, 1.0, Some(0)), segment(1.0, 2.0, Some(1))],
        events: vec!["1.20–1.48 s: micro lip-corner pull".into()],
    }
}

fn plan(stage1: bool, permutations: usize, correction: CorrectionPlan) -> AskPlan {
    AskPlan {
        labels: labels(),
        question: Question::Clip {
            clip: clip(),
            mode: PromptMode::Enriched,
            detail: ImageDetail::Low,
            stage1,
        },
        permutations,
        seed: None,
        correction,
        max_in_flight: 8,
        text_only: false,
    }
}

fn text(content: &str) -> Reply {
    Reply::Completion(Exchange {
        completion: Completion {
            content: content.into(),
            logprobs: Vec::new(),
            usage: None,
            finish_reason: Some("stop".into()),
            model: None,
        },
        dropped: Vec::new(),
        attempts: 1,
    })
}

/// The queries the flow sends until it waits (or ends).
fn sends(flow: &mut AskFlow<String>) -> Vec<Query> {
    let mut out = Vec::new();
    while let Step::Send(q) = flow.poll() {
        out.push(q);
    }
    out
}

fn all_text(q: &Query) -> String {
    q.messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn stage1_descriptions_reach_the_final_question_and_content_free_is_divided_out() {
    let mut flow = AskFlow::<String>::new(plan(true, 2, CorrectionPlan::ContentFree)).unwrap();
    assert_eq!(flow.progress(), (0, 2 + 2 + 2));
    let wave1 = sends(&mut flow);
    assert_eq!(
        wave1.iter().map(|q| q.purpose.clone()).collect::<Vec<_>>(),
        vec![
            Purpose::Describe { segment: 0 },
            Purpose::Describe { segment: 1 }
        ]
    );
    // Nothing of the final question goes out before stage 1 is answered.
    assert_eq!(flow.poll(), Step::Wait);
    flow.reply(wave1[1].id, Ok(text(" The smile fades. ")));
    assert_eq!(flow.poll(), Step::Wait);
    flow.reply(wave1[0].id, Ok(text("A smile starts.")));
    let wave2 = sends(&mut flow);
    assert_eq!(wave2.len(), 4);
    let (finals, blanks): (Vec<&Query>, Vec<&Query>) = wave2
        .iter()
        .partition(|q| matches!(q.purpose, Purpose::Classify { .. }));
    assert_eq!(finals.len(), 2);
    for q in &finals {
        let t = all_text(q);
        assert!(t.contains("Described: A smile starts."), "{t}");
        assert!(t.contains("Described: The smile fades."), "{t}");
    }
    // The content-free question keeps the layout but no measurement or description.
    for q in &blanks {
        let t = all_text(q);
        assert!(
            !t.contains("Described") && !t.contains("lip corners"),
            "{t}"
        );
    }
    assert_ne!(finals[0].purpose.order(), finals[1].purpose.order());
    let answer = r#"{"label": "happy", "scores": {"happy": 0.6, "sad": 0.1, "fear": 0.3}}"#;
    let blank = r#"{"label": "happy", "scores": {"happy": 0.8, "sad": 0.1, "fear": 0.1}}"#;
    for q in &wave2 {
        let r = if matches!(q.purpose, Purpose::Classify { .. }) {
            answer
        } else {
            blank
        };
        flow.reply(q.id, Ok(text(r)));
    }
    assert_eq!(flow.poll(), Step::Done);
    assert_eq!(flow.progress(), (6, 6));
    let out = flow.finish().unwrap();
    assert_eq!(out.result.label.as_deref(), Some("happy"));
    // fear: 0.3 / 0.1 beats happy: 0.6 / 0.8 once the bias is divided out.
    let corrected = out.corrected.clone().unwrap();
    assert_eq!(
        (corrected.method, corrected.label.as_str()),
        ("content_free", "fear")
    );
    let json = out.to_json();
    assert_eq!(json["stage1"][0]["description"], "A smile starts.");
    assert_eq!(json["stage1"][1]["segment"], 1);
    assert_eq!(json["corrected"]["label"], "fear");
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn the_first_failure_ends_the_flow_and_nothing_more_is_sent() {
    let mut p = plan(false, 3, CorrectionPlan::None);
    p.max_in_flight = 2;
    let mut flow = AskFlow::<String>::new(p).unwrap();
    let first = sends(&mut flow);
    assert_eq!(first.len(), 2, "at most max_in_flight at once");
    assert_eq!(flow.poll(), Step::Wait);
    flow.reply(first[0].id, Err("503".into()));
    // The third order is never sent; the one in flight is moot.
    assert_eq!(flow.poll(), Step::Done);
    flow.reply(first[1].id, Ok(text(r#"{"label": "sad"}"#)));
    assert_eq!(flow.poll(), Step::Done);
    let err = flow.finish().unwrap_err();
    assert_eq!(err.stage, Stage::Classify);
    assert_eq!(err.to_string(), "503");
}

#[test]
fn a_stage1_failure_names_its_stretch() {
    let mut flow = AskFlow::<String>::new(plan(true, 1, CorrectionPlan::None)).unwrap();
    let wave1 = sends(&mut flow);
    flow.reply(wave1[1].id, Err("timed out".into()));
    assert_eq!(flow.poll(), Step::Done);
    assert_eq!(
        flow.finish().unwrap_err().to_string(),
        "stage 1, stretch 1: timed out"
    );
}

#[test]
fn scored_replies_decide_and_priors_correct() {
    let priors = vec![0.7, 0.2, 0.1];
    let mut flow =
        AskFlow::<String>::new(plan(false, 3, CorrectionPlan::Priors { priors, tau: 1.0 }))
            .unwrap();
    let queries = sends(&mut flow);
    assert_eq!(queries.len(), 3);
    for q in &queries {
        flow.reply(q.id, Ok(Reply::Scored(vec![0.5, 0.2, 0.3])));
    }
    assert_eq!(flow.poll(), Step::Done);
    let out = flow.finish().unwrap();
    assert_eq!(out.result.label.as_deref(), Some("happy"));
    // log(0.5/0.7) < log(0.3/0.1): the rare label wins once priors are divided out.
    assert_eq!(out.corrected.unwrap().label, "fear");
    assert_eq!(out.result.runs[0].raw, "happy");
}

#[test]
fn unanswerable_correction_is_a_note_not_a_guess() {
    let mut flow = AskFlow::<String>::new(plan(false, 1, CorrectionPlan::ContentFree)).unwrap();
    let queries = sends(&mut flow);
    for q in &queries {
        let r = match q.purpose {
            Purpose::Classify { .. } => r#"{"label": "sad"}"#,
            _ => "I cannot tell.",
        };
        flow.reply(q.id, Ok(text(r)));
    }
    assert_eq!(flow.poll(), Step::Done);
    let out = flow.finish().unwrap();
    assert_eq!(out.corrected, None);
    assert_eq!(out.notes.len(), 1);
    assert!(
        out.to_json()["notes"][0]
            .as_str()
            .unwrap()
            .contains("content-free")
    );
}

#[test]
fn plans_that_cannot_be_kept_are_refused_before_anything_is_sent() {
    let setting = |p: AskPlan| AskFlow::<String>::new(p).err().map(|e| e.setting);
    let mut p = plan(true, 1, CorrectionPlan::None);
    p.text_only = true;
    assert_eq!(setting(p), Some(Setting::Stage1));
    assert_eq!(
        setting(plan(false, 4, CorrectionPlan::None)),
        Some(Setting::Permutations)
    );
    assert_eq!(
        setting(plan(false, 0, CorrectionPlan::None)),
        Some(Setting::Permutations)
    );
    let priors = |priors: Vec<f64>, tau| CorrectionPlan::Priors { priors, tau };
    assert_eq!(
        setting(plan(false, 1, priors(vec![1.0, 1.0], 1.0))),
        Some(Setting::Priors)
    );
    assert_eq!(
        setting(plan(false, 1, priors(vec![1.0, f64::NAN, 1.0], 1.0))),
        Some(Setting::Priors)
    );
    assert_eq!(
        setting(plan(false, 1, priors(vec![1.0; 3], f64::INFINITY))),
        Some(Setting::Tau)
    );
    let conversation = |correction| AskPlan {
        question: Question::Conversations(vec![(
            labels().names().to_vec(),
            vec![Message::text(crate::prompt::Role::User, "Which?")],
        )]),
        ..plan(false, 1, correction)
    };
    assert_eq!(
        setting(conversation(CorrectionPlan::ContentFree)),
        Some(Setting::ContentFree)
    );
    assert_eq!(setting(conversation(CorrectionPlan::None)), None);
}

#[test]
fn preview_lists_every_query_without_sending() {
    let all = AskFlow::<String>::preview(plan(true, 2, CorrectionPlan::ContentFree)).unwrap();
    let kinds: Vec<&str> = all
        .iter()
        .map(|q| match q.purpose {
            Purpose::Describe { .. } => "describe",
            Purpose::Classify { .. } => "classify",
            Purpose::ContentFree { .. } => "content-free",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "describe",
            "describe",
            "classify",
            "classify",
            "content-free",
            "content-free"
        ]
    );
}

#[test]
fn the_native_driver_keeps_the_order_of_label_orders() {
    // Replies arrive out of order (later orders answer first); runs stay in order.
    let out = drive(
        AskFlow::<String>::new(plan(false, 3, CorrectionPlan::None)).unwrap(),
        &|q: &Query| {
            std::thread::sleep(std::time::Duration::from_millis(30 - 10 * q.id as u64));
            let first = &q.purpose.order().unwrap()[0];
            Ok(text(&format!(r#"{{"label": "{first}"}}"#)))
        },
    )
    .unwrap();
    let firsts: Vec<&str> = out.result.runs.iter().map(|r| r.raw.as_str()).collect();
    assert_eq!(
        firsts,
        [
            r#"{"label": "happy"}"#,
            r#"{"label": "sad"}"#,
            r#"{"label": "fear"}"#
        ]
    );
}

#[test]
fn the_async_driver_reaches_the_same_outcome() {
    let answer = |q: &Query| -> Result<Reply, String> {
        Ok(match q.purpose {
            Purpose::Describe { segment } => text(&format!("stretch {segment} changed")),
            _ => text(r#"{"label": "sad", "scores": {"happy": 0.2, "sad": 0.5, "fear": 0.3}}"#),
        })
    };
    let p = || plan(true, 2, CorrectionPlan::ContentFree);
    let threads = drive(AskFlow::new(p()).unwrap(), &answer).unwrap();
    let mut seen = Vec::new();
    let futures = pollster::block_on(drive_async(
        AskFlow::new(p()).unwrap(),
        |q| std::future::ready(answer(&q)),
        |done, total| seen.push((done, total)),
    ))
    .unwrap();
    assert_eq!(threads, futures);
    assert_eq!(seen.last(), Some(&(6, 6)));
    assert_eq!(seen.len(), 6);
}

#[test]
fn permutations_are_permutations() {
    use super::runs::permutations;
    for seed in [None, Some(42)] {
        let ps = permutations(7, 4, seed);
        assert_eq!(ps.len(), 4);
        assert_eq!(ps[0], (0..7).collect::<Vec<_>>());
        for p in &ps {
            let mut s = p.clone();
            s.sort();
            assert_eq!(s, (0..7).collect::<Vec<_>>());
        }
        // Distinct orders, so label position bias is actually varied.
        for i in 0..4 {
            for j in 0..i {
                assert_ne!(ps[i], ps[j]);
            }
        }
    }
    // Cyclic: each label appears first in a different request.
    let firsts: Vec<usize> = permutations(7, 7, None).iter().map(|p| p[0]).collect();
    let mut f = firsts.clone();
    f.sort();
    f.dedup();
    assert_eq!(f.len(), 7);
}
