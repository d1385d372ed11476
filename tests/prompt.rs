//! The enriched prompt's structure in each mode, label permutation and token estimates.

use emolens::calibration::Correction;
use emolens::labels::LabelSet;
use emolens::prompt::{
    ClipContext, ImageDetail, Keyframe, LabelOrdering, Part, PromptMode, PromptOptions, Segment,
    all_frames_tokens, average_scores, content_free, estimate_tokens, final_request, label_orders,
    messages_json, stage1_requests,
};

fn jpeg(width: u32, height: u32, value: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode(
            &vec![value; (width * height * 3) as usize],
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// A 10 s clip at 30 fps with a keyframe per second and one micro-expression.
fn clip() -> ClipContext {
    let keyframes: Vec<Keyframe> = (0..10)
        .map(|i| Keyframe {
            time: i as f64,
            width: 320,
            height: 180,
            jpeg: jpeg(320, 180, 100 + i as u8),
        })
        .collect();
    let segments = (0..10)
        .map(|i| Segment {
            start: i as f64,
            end: i as f64 + 1.0,
            summary: if i == 4 {
                "4.20–4.48 s: brief left lip-corner depress (apex 4.32 s, 0.28 s, micro); neutral → disgusted → neutral.".into()
            } else {
                format!("{i}.00–{}.00 s: no movement; neutral.", i + 1)
            },
            description: None,
            keyframe: Some(i),
        })
        .collect();
    ClipContext {
        duration: 10.0,
        fps: 30.0,
        frames: 300,
        frame_width: 640,
        frame_height: 360,
        keyframes,
        segments,
        events: vec!["4.20–4.48 s: micro left lip-corner depress, nose wrinkle (apex 4.32 s); disgusted at apex".into()],
    }
}

fn images_in(messages: &[emolens::prompt::Message]) -> usize {
    messages.iter().map(|m| m.image_count()).sum()
}

fn text_of(messages: &[emolens::prompt::Message]) -> String {
    messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_mode_has_its_structure() {
    let clip = clip();
    let labels = LabelSet::dfew();
    let request = |mode| final_request(&clip, &PromptOptions::new(mode, labels.clone()));

    let keyframes = request(PromptMode::Keyframes);
    assert_eq!(images_in(&keyframes), 10);
    assert!(
        !text_of(&keyframes).contains("lip-corner"),
        "the baseline carries no measurements"
    );

    let summaries = request(PromptMode::Summaries);
    assert_eq!(images_in(&summaries), 0, "summaries mode sends no pixels");
    let json = messages_json(&summaries).to_string();
    assert!(
        !json.contains("image_url") && !json.contains("data:image"),
        "no image in the JSON"
    );
    assert!(text_of(&summaries).contains("4.20–4.48 s: brief left lip-corner depress"));
    assert!(text_of(&summaries).contains("micro left lip-corner depress"));

    let enriched = request(PromptMode::Enriched);
    assert_eq!(images_in(&enriched), 10);
    assert!(text_of(&enriched).contains("lip-corner depress"));

    // OpenAI shape: system + user; parts typed; images as JPEG data URLs.
    let json = messages_json(&enriched);
    assert_eq!(json[0]["role"], "system");
    assert_eq!(json[1]["role"], "user");
    let image = json[1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "image_url")
        .unwrap();
    assert!(
        image["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,/9j/")
    );
    // Every mode asks for one label of the set plus a score per label, as JSON.
    for messages in [&keyframes, &summaries, &enriched] {
        let text = text_of(messages);
        for label in labels.names() {
            assert!(
                text.contains(&format!("\"{label}\": <0..1>")),
                "{label} missing"
            );
        }
    }
}

#[test]
fn stage1_pairs_each_segment_with_its_frame() {
    let clip = clip();
    let requests = stage1_requests(&clip, ImageDetail::Low);
    assert_eq!(requests.len(), 10);
    let (index, messages) = &requests[4];
    assert_eq!(*index, 4);
    assert_eq!(images_in(messages), 1);
    assert!(text_of(messages).contains("lip-corner depress"));

    // Stage-1 text, once there, reaches the final question next to the measured summary.
    let mut with_descriptions = clip.clone();
    with_descriptions.segments[4].description = Some("The mouth corner tightens briefly.".into());
    let messages = final_request(
        &with_descriptions,
        &PromptOptions::new(PromptMode::Summaries, LabelSet::dfew()),
    );
    assert!(text_of(&messages).contains("Described: The mouth corner tightens briefly."));
}

#[test]
fn labels_are_listed_in_the_requested_order() {
    let clip = clip();
    let labels = LabelSet::dfew();
    let orders = label_orders(labels.len(), 7, LabelOrdering::Cyclic);
    let mut firsts = Vec::new();
    for order in &orders {
        let mut options = PromptOptions::new(PromptMode::Summaries, labels.clone());
        options.label_order = order.clone();
        let text = text_of(&final_request(&clip, &options));
        let listed = text
            .split("Choose exactly one of: ")
            .nth(1)
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_string();
        let expected: Vec<&str> = order.iter().map(|&i| labels.name(i)).collect();
        assert_eq!(listed, expected.join(", "));
        firsts.push(expected[0].to_string());
    }
    firsts.sort();
    firsts.dedup();
    assert_eq!(firsts.len(), 7, "every label leads once over a full cycle");

    // Averaging answers indexed by label removes a position bias that favours whatever is first.
    let per_request: Vec<Vec<f64>> = orders
        .iter()
        .map(|order| {
            let mut scores = vec![0.1; 7];
            scores[order[0]] += 0.3;
            scores
        })
        .collect();
    let averaged = average_scores(&per_request).unwrap();
    assert!(
        averaged.iter().all(|s| (s - averaged[0]).abs() < 1e-12),
        "{averaged:?}"
    );
}

#[test]
fn content_free_input_removes_evidence_but_keeps_layout() {
    let clip = clip();
    let free = content_free(&clip);
    assert_eq!(free.keyframes.len(), clip.keyframes.len());
    assert!(free.events.is_empty());
    assert!(
        free.segments
            .iter()
            .all(|s| s.summary.ends_with("no measurement."))
    );
    let a = image::load_from_memory(&free.keyframes[0].jpeg)
        .unwrap()
        .to_rgb8();
    assert!(
        a.pixels()
            .all(|p| p.0.iter().all(|&c| (c as i32 - 128).abs() <= 2)),
        "mid-grey"
    );
    // Contextual calibration divides out the content-free answer.
    let correction = Correction::from_content_free(&[0.5, 0.25, 0.25]);
    assert_eq!(correction.predict(&[0.45, 0.3, 0.25]), 1);
}

#[test]
fn token_estimates_by_mode_against_all_frames() {
    let clip = clip();
    let mut rows = Vec::new();
    for mode in [
        PromptMode::Keyframes,
        PromptMode::Summaries,
        PromptMode::Enriched,
    ] {
        for detail in [ImageDetail::Low, ImageDetail::High] {
            let mut options = PromptOptions::new(mode, LabelSet::dfew());
            options.detail = detail;
            let messages = final_request(&clip, &options);
            let estimate = estimate_tokens(&messages, (320, 180));
            rows.push((mode, detail, estimate, all_frames_tokens(&clip, detail)));
        }
    }
    for (mode, detail, estimate, all) in &rows {
        eprintln!(
            "{mode:?}/{detail:?}: {} tokens ({} text, {} images = {} image tokens); every frame: {all}",
            estimate.total, estimate.text_tokens, estimate.images, estimate.image_tokens
        );
        assert_eq!(estimate.total, estimate.text_tokens + estimate.image_tokens);
        assert!(
            estimate.total * 10 < *all,
            "far cheaper than sending all 300 frames"
        );
    }
    let get = |m, d| rows.iter().find(|r| r.0 == m && r.1 == d).unwrap().2;
    let (k, s, e) = (
        get(PromptMode::Keyframes, ImageDetail::Low),
        get(PromptMode::Summaries, ImageDetail::Low),
        get(PromptMode::Enriched, ImageDetail::Low),
    );
    assert_eq!(k.image_tokens, 10 * 85);
    assert_eq!(s.image_tokens, 0);
    // Enriched = the baseline's frames plus the summaries' text.
    assert_eq!(e.image_tokens, k.image_tokens);
    assert!(e.text_tokens > s.text_tokens && e.text_tokens > k.text_tokens);
    // A real tokenizer: about 4 characters per token of English, not one per character.
    let text_chars: usize = text_of(&final_request(
        &clip,
        &PromptOptions::new(PromptMode::Summaries, LabelSet::dfew()),
    ))
    .len();
    assert!(
        s.text_tokens * 2 < text_chars && s.text_tokens * 8 > text_chars,
        "{} tokens for {text_chars} chars",
        s.text_tokens
    );
}

/// The rule-based text estimate against GPT-4o's real tokenizer (o200k_base): tuned on the
/// prompts emolens writes, measured on them and, held aside, on this project's README prose.
#[test]
fn text_token_rule_stays_near_the_real_tokenizer() {
    let bpe = tiktoken_rs::o200k_base().unwrap();
    let clip = clip();
    let mut prompts = Vec::new();
    for mode in [
        PromptMode::Keyframes,
        PromptMode::Summaries,
        PromptMode::Enriched,
    ] {
        prompts.push(text_of(&final_request(
            &clip,
            &PromptOptions::new(mode, LabelSet::dfew()),
        )));
        prompts.push(text_of(&final_request(
            &clip,
            &PromptOptions::new(mode, LabelSet::mafw()),
        )));
    }
    for (_, messages) in emolens::prompt::stage1_requests(&clip, ImageDetail::Low) {
        prompts.push(text_of(&messages));
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let prose: Vec<String> = readme
        .split("\n\n")
        .filter(|p| p.len() > 200 && !p.starts_with("```") && !p.starts_with('|'))
        .map(str::to_string)
        .collect();
    for (name, texts, limit) in [
        ("prompts", &prompts, 0.05),
        ("README prose (aside)", &prose, 0.1),
    ] {
        let (mut rule, mut real, mut worst) = (0usize, 0usize, 0f64);
        for t in texts.iter() {
            let (r, b) = (
                emolens::prompt::text_tokens(t),
                bpe.encode_ordinary(t).len(),
            );
            rule += r;
            real += b;
            worst = worst.max((r as f64 - b as f64).abs() / b as f64);
        }
        let total = (rule as f64 - real as f64) / real as f64;
        eprintln!(
            "{name}: {} texts, rule {rule} vs o200k {real} tokens ({:+.1} %), worst text {:.1} %",
            texts.len(),
            100.0 * total,
            100.0 * worst
        );
        assert!(
            total.abs() < limit && worst < 2.0 * limit,
            "{name}: {total} overall, {worst} worst"
        );
    }
}
