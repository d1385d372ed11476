//! Temporal analysis on real clips: ffmpeg decoding, the per-frame timeline, spotting, keyframes
//! and summaries, natively on burn's CPU backend.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use emolens::face::{DetectorOptions, FaceAnalyzer, FaceWeights, TrackingOptions};
use emolens::timeline::keyframes::{KeyframeReason, encode_jpeg};
use emolens::timeline::{
    EventKind, KeyframeOptions, Timeline, VideoReport, select_keyframes, summarise,
};
use emolens::video::{Analysis, VideoError, analyse_video, decode_all, probe};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn clip(name: &str) -> PathBuf {
    Path::new(ROOT).join("tests/data/video").join(name)
}

fn analyse(name: &str) -> Analysis {
    analyse_with(name, TrackingOptions::default())
}

fn analyse_with(name: &str, tracking: TrackingOptions) -> Analysis {
    let weights =
        FaceWeights::load_dir(&Path::new(ROOT).join("node_modules/@vladmandic/face-api/model"))
            .expect("face-api models installed by `npm ci`");
    let analyzer =
        FaceAnalyzer::new(&weights, &Device::flex(), DetectorOptions::default()).unwrap();
    analyse_video(&analyzer, &clip(name), None, 8, tracking, &mut |_, _| {}).unwrap()
}

/// Least-squares slope of `b` against `a`.
fn slope(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    cov / a.iter().map(|x| (x - ma).powi(2)).sum::<f64>().max(1e-12)
}

fn dominant(p: &[f64; 7]) -> usize {
    (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
}

/// Events never start, peak or end on a frame without the main face.
fn assert_events_on_faces(t: &Timeline, a: &Analysis) {
    for e in &a.spotting.events {
        for frame in [e.onset_frame, e.apex_frame, e.offset_frame] {
            let r = t.records.iter().find(|r| r.index == frame).unwrap();
            assert!(r.main_face(), "event at a faceless frame {frame}");
        }
    }
}

// ---- decoding ------------------------------------------------------------------------------

#[test]
fn decodes_every_frame_with_its_time() {
    let frames = decode_all(&clip("single_face.mp4"), None).unwrap();
    assert_eq!(frames.len(), 72);
    assert_eq!((frames[0].image.width, frames[0].image.height), (640, 360));
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.index, i);
        assert!(
            (f.time - i as f64 / 30.0).abs() < 1e-3,
            "frame {i} at {}",
            f.time
        );
    }
    // Downscaling keeps the aspect and the count.
    let small = decode_all(&clip("single_face.mp4"), Some(320)).unwrap();
    assert_eq!(small.len(), 72);
    assert_eq!((small[0].image.width, small[0].image.height), (320, 180));
}

#[test]
fn decodes_hevc_with_variable_frame_rate() {
    let info = probe(&clip("face_noface.mov")).unwrap();
    assert_eq!(info.codec, "hevc");
    let frames = decode_all(&clip("face_noface.mov"), None).unwrap();
    assert_eq!(frames.len(), 169);
    assert_eq!((frames[0].image.width, frames[0].image.height), (960, 540));
    assert!(frames.windows(2).all(|w| w[1].time > w[0].time));
    // The clip runs 6.4 s: times are the container's, not index / a nominal rate.
    assert!((frames.last().unwrap().time - 6.36).abs() < 0.05);
}

#[test]
fn clear_errors_for_missing_and_non_video_files() {
    let missing = decode_all(Path::new("/nonexistent/clip.mp4"), None).unwrap_err();
    assert!(matches!(missing, VideoError::NotFound(_)), "{missing}");

    let dir = std::env::temp_dir().join(format!("emolens-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("corrupt.mp4");
    std::fs::write(
        &garbage,
        b"this is not a video at all, just some text bytes",
    )
    .unwrap();
    let err = decode_all(&garbage, None).unwrap_err();
    assert!(matches!(err, VideoError::NotVideo { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.mp4"), "{err}");

    // A truncated real video: the header survives, the frames do not.
    let bytes = std::fs::read(clip("single_face.mp4")).unwrap();
    let truncated = dir.join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    match decode_all(&truncated, None) {
        Err(e) => assert!(matches!(
            e,
            VideoError::NotVideo { .. } | VideoError::Decode { .. }
        )),
        Ok(frames) => assert!(frames.len() < 72),
    }

    // A still image is not a video.
    let png = dir.join("still.png");
    image::RgbImage::new(8, 8).save(&png).unwrap();
    let err = decode_all(&png, None).unwrap_err();
    assert!(matches!(err, VideoError::NotVideo { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- analysis ------------------------------------------------------------------------------

#[test]
fn single_face_neutral_then_one_macro_smile() {
    let a = analyse("single_face.mp4");
    let t = &a.timeline;
    assert_eq!(t.records.len(), 72);
    assert!(
        t.records.iter().all(|r| r.main_face()),
        "the face is always visible"
    );
    assert_eq!(t.tracks.len(), 1, "one person, one id: {:?}", t.tracks);

    // Neutral at the start, happy from about 0.6 s.
    let label = |r: &emolens::timeline::FrameRecord| dominant(&r.expressions.unwrap());
    let start: Vec<_> = t.records.iter().filter(|r| r.time < 0.45).collect();
    assert!(start.iter().all(|r| label(r) == 0), "neutral at the start");
    let smile: Vec<_> = t
        .records
        .iter()
        .filter(|r| (0.7..2.25).contains(&r.time))
        .collect();
    let happy = smile.iter().filter(|r| label(r) == 1).count();
    assert!(
        happy * 10 >= smile.len() * 9,
        "{happy}/{} happy",
        smile.len()
    );

    // Exactly one event: the smile, macro, starting at about 0.5–0.7 s.
    let events = &a.spotting.events;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.kind, EventKind::Macro);
    assert!(
        (0.45..=0.75).contains(&e.onset_time),
        "onset {}",
        e.onset_time
    );
    assert!(e.apex_time > e.onset_time && e.offset_time >= e.apex_time);
    assert!(
        e.moves
            .iter()
            .take(3)
            .any(|m| m.name.starts_with("lip_corner_pull")),
        "{:?}",
        e.moves
    );
    assert_eq!(e.apex_expression.as_ref().unwrap().0, "happy");
    assert_eq!(e.expression_sequence[..2], ["neutral", "happy"]);
    assert_events_on_faces(t, &a);

    // Keyframes: the base rate plus the apex; summaries cover the clip without gaps.
    let keyframes = select_keyframes(t, &a.spotting, &KeyframeOptions::default());
    assert!(
        keyframes
            .iter()
            .any(|k| k.reason == KeyframeReason::Apex && k.frame == e.apex_frame)
    );
    assert!(
        keyframes
            .iter()
            .filter(|k| k.reason == KeyframeReason::Base)
            .count()
            >= 3
    );
    let summaries = summarise(t, &a.spotting, &keyframes);
    assert_eq!(summaries[0].start_time, 0.0);
    assert!(
        summaries
            .windows(2)
            .all(|w| (w[0].end_time - w[1].start_time).abs() < 1e-6)
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.text.contains("lip-corner pull") && s.text.contains("macro"))
    );

    // A budget keeps the apex and drops neutral base frames first.
    let few = select_keyframes(
        t,
        &a.spotting,
        &KeyframeOptions {
            base_fps: 5.0,
            max_keyframes: Some(3),
            ..Default::default()
        },
    );
    assert_eq!(few.len(), 3);
    assert!(few.iter().any(|k| k.reason == KeyframeReason::Apex));

    // Keyframe JPEGs decode back at the requested size.
    let frame = decode_all(&clip("single_face.mp4"), None)
        .unwrap()
        .remove(e.apex_frame);
    let jpeg = encode_jpeg(&frame.image, 320, 80).unwrap();
    let back = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((back.width(), back.height()), (320, 180));

    // The report (CLI and browser): picking keyframes again from its records at another rate
    // gives what a report made at that rate has, and keeps the pixels of unchanged keyframes.
    let at = |base_fps| KeyframeOptions {
        base_fps,
        max_keyframes: None,
        ..Default::default()
    };
    let mut report = VideoReport::new("clip".into(), t, &a.spotting, 1.0, &at(1.0), true);
    report.keyframes[0].jpeg = Some("data:image/jpeg;base64,AAAA".into());
    let again = report.with_keyframes(&at(3.0)).unwrap();
    let direct = VideoReport::new("clip".into(), t, &a.spotting, 1.0, &at(3.0), true);
    assert!(again.keyframes.len() > report.keyframes.len());
    assert_eq!(again.keyframe_frames(), direct.keyframe_frames());
    assert_eq!(again.summaries, direct.summaries);
    assert_eq!(again.events, direct.events);
    assert_eq!(again.keyframes[0].jpeg, report.keyframes[0].jpeg);
    assert!(again.keyframes[1..].iter().all(|k| {
        k.jpeg.is_none()
            || report
                .keyframes
                .iter()
                .any(|o| o.keyframe.frame == k.keyframe.frame)
    }));
    let without_records = VideoReport::new("clip".into(), t, &a.spotting, 1.0, &at(1.0), false);
    assert!(without_records.with_keyframes(&at(3.0)).is_err());
}

#[test]
fn no_face_clip_has_faceless_frames_and_no_events() {
    let a = analyse("no_face.mp4");
    let t = &a.timeline;
    // 98 packets, of which the edit list discards 3 (ffmpeg shows 95).
    assert_eq!(t.records.len(), 95);
    assert_eq!(t.records[0].time, 0.0);
    assert!((t.records[94].time - 94.0 / 24.0).abs() < 1e-3);
    assert!((t.fps - 24.0).abs() < 0.01);
    let faceless = t.records.iter().filter(|r| !r.face_present).count();
    assert!(faceless >= 92, "{faceless}/95 faceless");
    assert!(a.spotting.events.is_empty(), "{:?}", a.spotting.events);
    let keyframes = select_keyframes(t, &a.spotting, &KeyframeOptions::default());
    let summaries = summarise(t, &a.spotting, &keyframes);
    assert!(
        summaries.iter().all(|s| s.text.contains("no face")),
        "{summaries:?}"
    );
}

#[test]
fn face_leaving_the_frame_is_marked_and_events_stay_on_the_face() {
    let a = analyse("face_noface.mov");
    let t = &a.timeline;
    assert_eq!(t.records.len(), 169);
    // The face is there at the start and gone at the end.
    assert!(t.records[..30].iter().all(|r| r.main_face()));
    let tail = &t.records[t.records.len() - 60..];
    assert!(tail.iter().all(|r| !r.main_face()));
    assert!(tail.iter().filter(|r| !r.face_present).count() >= 55);
    assert_events_on_faces(t, &a);
    assert!(!a.spotting.events.is_empty());
    let keyframes = select_keyframes(t, &a.spotting, &KeyframeOptions::default());
    let summaries = summarise(t, &a.spotting, &keyframes);
    assert!(summaries.last().unwrap().text.contains("no face visible"));
}

#[test]
fn spotting_benchmark_and_keyframe_sampling_on_spliced_bursts() {
    use emolens::timeline::SpotOptions;
    use emolens::timeline::bench::{
        BenchOptions, evaluate, find_ranges, generate, keyframe_coverage,
    };
    let source = analyse("single_face.mp4").timeline;
    let (neutral, smile) = find_ranges(&source).expect("neutral start and a smile");
    let options = BenchOptions::default();
    let clips = generate(neutral, smile, &options);
    let score = evaluate(&source, &clips, &SpotOptions::default());
    assert!(score.clips >= 20 && score.f1 >= 0.8, "{score:?}");
    assert!(score.control_false_per_minute <= 1.0, "{score:?}");

    // At the same budget, emotion-balanced keyframes show far more of the brief bursts than
    // frames spread evenly over the clip.
    let coverage = keyframe_coverage(&source, &clips, &SpotOptions::default(), 1.0);
    let [uniform, balanced, with_apexes] = &coverage[..] else {
        panic!("three strategies expected: {coverage:?}")
    };
    assert_eq!(uniform.keyframes, with_apexes.keyframes, "{coverage:?}");
    assert_eq!(uniform.keyframes, balanced.keyframes, "{coverage:?}");
    assert!(
        balanced.burst_recall > uniform.burst_recall + 0.2,
        "{coverage:?}"
    );
    assert!(
        with_apexes.burst_recall >= balanced.burst_recall && with_apexes.burst_recall >= 0.9,
        "{coverage:?}"
    );
    assert!(with_apexes.non_neutral_share > 2.0 * uniform.non_neutral_share);
}

/// Tracking (the detector every `redetect_every` frames, landmarks from the previous frame's
/// crop in between) against the detector on every frame, on every clip: expressions within
/// 0.02 on ≥ 95 % of the frames both see a face on, faces entering and leaving found within
/// `redetect_every` frames, the same events, and the detector on far fewer frames.
#[test]
fn tracking_matches_detection_on_every_frame() {
    use emolens::timeline::SpotOptions;
    use emolens::timeline::bench::{BenchOptions, evaluate, find_ranges, generate};
    let tracking = TrackingOptions::default();
    let n = tracking.redetect_every;
    for name in ["single_face.mp4", "face_noface.mov", "no_face.mp4"] {
        let every = analyse_with(name, TrackingOptions::off());
        let tracked = analyse_with(name, tracking);
        let (a, b) = (&every.timeline.records, &tracked.timeline.records);
        assert_eq!(a.len(), b.len(), "{name}");
        let mut both = 0;
        let mut close = 0;
        let mut worst: f64 = 0.0;
        for (x, y) in a.iter().zip(b) {
            if let (Some(p), Some(q)) = (x.expressions, y.expressions) {
                both += 1;
                let d = p
                    .iter()
                    .zip(&q)
                    .map(|(u, v)| (u - v).abs())
                    .fold(0.0, f64::max);
                worst = worst.max(d);
                close += usize::from(d <= 0.02);
            }
        }
        // Presence may differ only in runs shorter than the re-detection interval.
        let mut run = 0;
        let mut longest = 0;
        for (x, y) in a.iter().zip(b) {
            run = if x.face_present != y.face_present {
                run + 1
            } else {
                0
            };
            longest = longest.max(run);
        }
        let stats = tracked.tracking;
        println!(
            "{name}: {close}/{both} frames within 0.02 (worst {worst:.3}); presence differs \
             for at most {longest} frames in a row; detector on {}/{} frames {stats:?}; \
             events {} vs {}; analysis {:.1} vs {:.1} frames/s",
            stats.detected,
            a.len(),
            every.spotting.events.len(),
            tracked.spotting.events.len(),
            every.frames_per_second,
            tracked.frames_per_second
        );
        assert!(
            close as f64 >= 0.95 * both as f64,
            "{name}: {close}/{both} within 0.02"
        );
        assert!(
            longest < n,
            "{name}: presence differs for {longest} frames in a row"
        );
        let kinds =
            |s: &emolens::timeline::Spotting| s.events.iter().map(|e| e.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(&every.spotting),
            kinds(&tracked.spotting),
            "{name}: events"
        );
        if name == "single_face.mp4" {
            assert!(
                stats.detected * 4 <= a.len(),
                "the detector ran on {} of {} frames",
                stats.detected,
                a.len()
            );
            // The spotting benchmark's F1 holds.
            let score = |t: &Timeline| {
                let (neutral, smile) = find_ranges(t).expect("neutral start and a smile");
                let clips = generate(neutral, smile, &BenchOptions::default());
                evaluate(t, &clips, &SpotOptions::default())
            };
            let (s_every, s_tracked) = (score(&every.timeline), score(&tracked.timeline));
            println!(
                "spot-bench F1 {:.3} (every frame) vs {:.3} (tracked)",
                s_every.f1, s_tracked.f1
            );
            assert!(
                (s_every.f1 - s_tracked.f1).abs() <= 0.01,
                "{s_every:?} vs {s_tracked:?}"
            );
        }
    }
}

/// The clip cut into chunks of `redetect_every` frames, each with its own tracker (as parallel
/// Web Workers analyse it), gives exactly what one tracker over the whole clip gives.
#[test]
fn chunks_analysed_apart_equal_the_whole_clip() {
    use emolens::face::FaceTracker;
    let weights =
        FaceWeights::load_dir(&Path::new(ROOT).join("node_modules/@vladmandic/face-api/model"))
            .unwrap();
    let analyzer =
        FaceAnalyzer::new(&weights, &Device::flex(), DetectorOptions::default()).unwrap();
    let tracking = TrackingOptions {
        redetect_every: 10,
        ..TrackingOptions::default()
    };
    // talking_earrings: a face that fills the frame, which the detector misses now and then.
    for name in [
        "single_face.mp4",
        "face_noface.mov",
        "dev/talking_earrings.mp4",
    ] {
        let frames = decode_all(&clip(name), None).unwrap();
        let images: Vec<_> = frames.iter().map(|f| &f.image).take(60).collect();
        let mut whole_tracker = FaceTracker::new(tracking);
        let whole =
            pollster::block_on(analyzer.analyze_sequence(&images, &mut whole_tracker)).unwrap();
        let mut chunked = Vec::new();
        let mut stats = emolens::face::TrackingStats::default();
        for (k, chunk) in images.chunks(tracking.redetect_every).enumerate() {
            let mut tracker = FaceTracker::starting_at(tracking, k * tracking.redetect_every);
            chunked.extend(
                pollster::block_on(analyzer.analyze_sequence(chunk, &mut tracker)).unwrap(),
            );
            stats = stats.merged(tracker.stats());
        }
        assert_eq!(chunked, whole, "{name}");
        assert_eq!(stats, whole_tracker.stats(), "{name}");
        assert!(stats.tracked > 0, "{name}: {stats:?}");
    }
}

/// The real-clip development set (tests/data/video/dev): talking, head motion, lighting and
/// glasses controls, real expressions, bursts spliced into the moving faces.
#[test]
fn spotting_on_the_real_clip_development_set() {
    use emolens::timeline::activation::activations;
    use emolens::timeline::devbench::{DevBenchOptions, DevSet, evaluate_split};
    use emolens::timeline::{SpotOptions, SpotSeries};
    use emolens::timeline::{features, spot};
    let dir = clip("dev");
    let set: DevSet =
        serde_json::from_str(&std::fs::read_to_string(dir.join("annotations.json")).unwrap())
            .unwrap();
    let analysed: Vec<_> = set
        .clips
        .iter()
        .map(|c| (c.clone(), analyse(&format!("dev/{}", c.file)).timeline))
        .collect();
    for split in ["dev", "aside"] {
        let clips: Vec<_> = analysed
            .iter()
            .filter(|(c, _)| c.split == split)
            .cloned()
            .collect();
        let s = evaluate_split(
            split,
            &clips,
            &SpotOptions::default(),
            &DevBenchOptions::default(),
        );
        println!("{}", serde_json::to_string(&s).unwrap());
        assert!(s.spliced.truth >= 40, "{split}: too few spliced bursts");
        if split == "dev" {
            // Measured 0.892 (micro 0.861, talking hosts 0.874, the hand host 0.815; over seeds
            // 13–20 0.878, micro 0.839; real episodes 15 of 23) with 26 talking controls of 18
            // people (3.0 min), each marked by two blind reviews; the target is 0.9 for both.
            // How each change moved these: docs/dev-bench-log.md.
            assert!(s.spliced.f1 >= 0.87, "dev spliced F1 {}", s.spliced.f1);
            assert!(
                s.spliced_micro.f1 >= 0.82,
                "dev spliced micro F1 {}",
                s.spliced_micro.f1
            );
            let talking = &s.spliced_by_host["talking"];
            assert!(talking.f1 >= 0.84, "dev spliced into talking: {talking:?}");
            // The hand host's own smiles are marked, so bursts spliced there are told apart.
            let hand = &s.spliced_by_host["hand"];
            assert!(hand.f1 >= 0.8, "dev spliced into hand: {hand:?}");
            // frown_surprise's closing frown follows its surprise's brow raise with no rest
            // between: found only as an episode of its own. grin_pout's slight smile, grin and
            // pucker follow one another with no rest between: found as three where the
            // classifier's reading changes (15 of 23; 12 before).
            assert!(s.real.hits >= 14, "dev real episodes: {:?}", s.real);
            // Talking included: speech is a span, not a run of events.
            // A hand over the face too: the hand reaching the chin bends the landmarks (a
            // nose wrinkle at 0.23 s, rising until the face is lost under the hand).
            for (kind, c) in &s.controls {
                assert!(c.false_per_minute <= 1.0, "dev {kind}: {c:?}");
                // Cut to start later (mid-sentence, nothing before the first frame), the
                // talking controls give 0.5 false events per minute of first seconds (6 in 665
                // cuts: 3 of them talking_stars's rounded 'oh' read surprised over a baseline
                // of a few seconds), the others none.
                assert!(
                    c.late_start_false_per_minute <= 1.0,
                    "dev {kind} started late: {c:?}"
                );
                // Cut to stop earlier (mid-sentence), the talking controls give 0.8 false
                // events per minute of last seconds (9 in 665 cuts: talking_oval's mouth opened
                // with his inner brows raised in 3, one lowering of talking_sofa's brows read
                // disgusted in 3), the others none.
                assert!(
                    c.early_stop_false_per_minute <= 1.0,
                    "dev {kind} stopped early: {c:?}"
                );
            }
            assert!(s.controls.contains_key("hand"));
        }
    }
    // A turned head is no one-sided movement. In the dev clips with head turns (yaw proxy
    // spread over 0.12), the left-minus-right lip-corner pull follows the yaw by about -1 per
    // unit (the depression by about 0.26) unless the spotter takes the yaw out.
    let mut turned_clips = 0;
    for (c, t) in analysed.iter().filter(|(c, _)| c.split == "dev") {
        let series = SpotSeries::of(t);
        let (times, features, yaw) = (&series.times, &series.features, &series.yaw);
        let mut sorted: Vec<f64> = yaw.iter().copied().filter(|y| y.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n < 30 || sorted[n * 19 / 20] - sorted[n / 20] < 0.12 {
            continue;
        }
        let mouth = series.mouth();
        let usual = sorted[n / 2];
        let options = SpotOptions::default();
        // Over the frames turned clearly away from the usual yaw (turns within 0.02 are left
        // alone by design).
        let slopes = |yaw_known: Option<&[f64]>| {
            let a = activations(
                times,
                features,
                &mouth,
                yaw_known,
                &series.expressions,
                t.fps,
                &options,
            );
            let side = |l: usize, r: usize| {
                let (ys, ds): (Vec<f64>, Vec<f64>) = (0..times.len())
                    .filter(|&i| features[i].is_some() && (yaw[i] - usual).abs() > 0.04)
                    .map(|i| (yaw[i], a.change[l][i] - a.change[r][i]))
                    .unzip();
                slope(&ys, &ds)
            };
            (
                side(
                    features::LIP_CORNER_PULL_LEFT,
                    features::LIP_CORNER_PULL_RIGHT,
                ),
                side(
                    features::LIP_CORNER_DEPRESS_LEFT,
                    features::LIP_CORNER_DEPRESS_RIGHT,
                ),
            )
        };
        let (blind, seen) = (slopes(None), slopes(Some(yaw)));
        println!(
            "{}: pull and depression differences per unit of yaw {blind:.2?}, taken out {seen:.2?}",
            c.file
        );
        turned_clips += 1;
        let halved = |b: f64, s: f64| s.abs() <= 0.5 * b.abs();
        assert!(blind.0 < -0.5 && blind.1 > 0.1, "{}: {blind:?}", c.file);
        assert!(
            halved(blind.0, seen.0) && halved(blind.1, seen.1),
            "{}: {blind:?} {seen:?}",
            c.file
        );
    }
    assert!(
        turned_clips >= 5,
        "{turned_clips} dev clips with head turns"
    );
    // A face that fills the frame: the detector misses it in 39 of 231 frames, the tracked crop
    // holds it in all but 14 of them.
    let (_, filled) = analysed
        .iter()
        .find(|(c, _)| c.file == "talking_earrings.mp4")
        .unwrap();
    let with_face = filled.records.iter().filter(|r| r.main_face()).count();
    assert!(
        with_face as f64 >= 0.9 * filled.records.len() as f64,
        "face in {with_face} of {} frames",
        filled.records.len()
    );
    // Under the hand (0.37-1.0 s) the face is lost or its mouth covered, and no event runs.
    let (_, hand) = analysed
        .iter()
        .find(|(c, _)| c.file == "hand_helmet.mp4")
        .unwrap();
    let under: Vec<_> = hand
        .records
        .iter()
        .filter(|r| (0.37..1.0).contains(&r.time))
        .collect();
    let seen = under
        .iter()
        .filter(|r| r.main_face() && !r.mouth_covered)
        .count();
    assert!(
        seen * 4 <= under.len(),
        "face seen in {seen} of {} frames",
        under.len()
    );
    let s = spot(hand, &SpotOptions::default());
    assert!(
        s.events
            .iter()
            .all(|e| e.offset_time < 0.37 || e.onset_time >= 1.0),
        "{:?}",
        s.events
    );
    // Talking is reported as talking.
    let (_, talking) = analysed
        .iter()
        .find(|(c, _)| c.file == "talking_glasses_a.mp4")
        .unwrap();
    let s = spot(talking, &SpotOptions::default());
    let spoken: f64 = s.talking.iter().map(|t| t.end_time - t.start_time).sum();
    assert!(spoken >= 1.0, "talking spans {:?}", s.talking);
}
