//! The model's text → a label from the set, scores per label and a rationale.
//!
//! Models wrap JSON in fences, add prose, say "Happiness" for "happy". All of that is accepted,
//! but a label is only ever one the set recognises (via [`LabelSet::canonical`]): text that names
//! none is returned as [`Answer::Unparsed`], never guessed.

use serde::Serialize;
use serde_json::Value;

use super::response::TokenLogprob;
use crate::calibration::{Correction, Method, fit};
use crate::labels::LabelSet;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    Parsed {
        /// Index into the label set.
        label: usize,
        /// One score per label in set order, summing to 1. Scores the model did not give are 0;
        /// with no scores at all the answer is one-hot.
        scores: Vec<f64>,
        rationale: Option<String>,
    },
    Unparsed {
        raw: String,
    },
}

/// Parses an answer against `labels`.
pub fn parse_answer(text: &str, labels: &LabelSet) -> Answer {
    for candidate in json_candidates(text) {
        if let Some(a) = from_json(&candidate, labels) {
            return a;
        }
    }
    // A bare label ("Happy.", "**sad**") is a clear answer too.
    let bare = text
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string();
    if let Some(i) = labels.canonical(&bare) {
        return one_hot(i, labels.len(), None);
    }
    Answer::Unparsed {
        raw: text.to_string(),
    }
}

fn one_hot(i: usize, n: usize, rationale: Option<String>) -> Answer {
    let mut scores = vec![0.0; n];
    scores[i] = 1.0;
    Answer::Parsed {
        label: i,
        scores,
        rationale,
    }
}

/// Balanced `{...}` spans of the text that parse as JSON objects, outermost first, string-aware
/// so braces inside rationale strings do not confuse it. Fences need no special case: the span
/// search skips them.
///
/// One pass with a stack of open braces, so the work stays linear in the text however many
/// braces never close (a 2 MB run of `{` is one pass, not a scan from each of them).
fn json_candidates(text: &str) -> Vec<Value> {
    let mut spans = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let (mut in_str, mut esc) = (false, false);
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            // Quotes only open strings inside a brace: prose apostrophes and quotes around the
            // JSON do not.
            b'"' if !open.is_empty() => in_str = true,
            b'{' => open.push(i),
            b'}' => {
                if let Some(start) = open.pop() {
                    spans.push((start, i));
                }
            }
            _ => {}
        }
    }
    // Outermost first: by start, the longer span first; spans inside an accepted one are skipped.
    spans.sort_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
    let mut out = Vec::new();
    let mut covered_to = None;
    for (s, e) in spans {
        if covered_to.is_some_and(|c| s <= c) {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&text[s..=e])
            && v.is_object()
        {
            out.push(v);
            covered_to = Some(e);
        }
    }
    out
}

fn from_json(v: &Value, labels: &LabelSet) -> Option<Answer> {
    let field = |names: &[&str]| {
        v.as_object()?
            .iter()
            .find_map(|(k, x)| names.iter().any(|n| k.eq_ignore_ascii_case(n)).then_some(x))
    };
    let label = field(&["label", "emotion", "answer", "prediction"])
        .and_then(Value::as_str)
        .and_then(|s| labels.canonical(s));
    let mut scores = vec![0.0; labels.len()];
    let mut any_score = false;
    if let Some(obj) = field(&["scores", "probabilities", "probs"]).and_then(Value::as_object) {
        for (k, x) in obj {
            if let (Some(i), Some(s)) = (labels.canonical(k), x.as_f64())
                && s.is_finite()
                && s >= 0.0
            {
                scores[i] += s;
                any_score = true;
            }
        }
    }
    let rationale = field(&["rationale", "reason", "explanation"])
        .and_then(Value::as_str)
        .map(str::to_string);
    let sum: f64 = scores.iter().sum();
    let label = match label {
        Some(l) => l,
        // Scores alone still name a label: their argmax, never a made-up one.
        None if any_score && sum > 0.0 => crate::calibration::argmax(&scores),
        None => return None,
    };
    if !any_score || sum <= 0.0 {
        return Some(one_hot(label, labels.len(), rationale));
    }
    scores.iter_mut().for_each(|s| *s /= sum);
    Some(Answer::Parsed {
        label,
        scores,
        rationale,
    })
}

/// Per-label probabilities from the logprobs of the token where the label is written.
///
/// The label token is found by offset: the text position of the label value (after
/// `"label": "` in JSON, or the first letter of a bare answer) is mapped onto the token stream.
/// Each alternative token is credited to the labels it could begin (its lowercase text is a
/// prefix of the label's name); a token that begins several labels is split evenly among them.
/// The result is normalised over the label set. `None` when no alternative begins any label.
pub fn label_probs(content: &str, tokens: &[TokenLogprob], labels: &LabelSet) -> Option<Vec<f64>> {
    let at = label_offset(content)?;
    // Offsets are only meaningful if the tokens spell the content up to the label; a server that
    // dropped or re-encoded tokens must not get its alternatives credited to the wrong place.
    let joined: String = tokens.iter().map(|t| t.token.as_str()).collect();
    if joined.get(..at) != content.get(..at) {
        return None;
    }
    let mut pos = 0;
    let tok = tokens.iter().find(|t| {
        let end = pos + t.token.len();
        let hit = end > at;
        pos = end;
        hit
    })?;
    // The token may start before the label (e.g. `"h` or ` happy`): only the part from the label
    // on is compared, and alternatives get the same prefix removed.
    let tok_start = pos - tok.token.len();
    let lead = content.get(tok_start..at.max(tok_start)).unwrap_or("");
    let alts: Vec<(String, f64)> = if tok.top.is_empty() {
        vec![(tok.token.clone(), tok.logprob)]
    } else {
        tok.top.clone()
    };
    let names: Vec<String> = labels.names().iter().map(|n| n.to_lowercase()).collect();
    let mut probs = vec![0.0; labels.len()];
    for (text, lp) in alts {
        let Some(rest) = text.strip_prefix(lead) else {
            continue;
        };
        let piece = rest.trim_start().to_lowercase();
        if piece.is_empty() {
            continue;
        }
        let matching: Vec<usize> = (0..names.len())
            .filter(|&i| names[i].starts_with(&piece) || piece.starts_with(&names[i]))
            .collect();
        for &i in &matching {
            probs[i] += lp.exp() / matching.len() as f64;
        }
    }
    let sum: f64 = probs.iter().sum();
    (sum > 0.0).then(|| probs.iter().map(|p| p / sum).collect())
}

/// Byte offset where the label is written.
fn label_offset(content: &str) -> Option<usize> {
    // ASCII-only case folding keeps byte offsets those of `content` (full lowercasing changes
    // lengths: `İ` becomes 3 bytes, the Kelvin sign `K` becomes 1).
    let key = b"\"label\"";
    if let Some(k) = content
        .as_bytes()
        .windows(key.len())
        .position(|w| w.eq_ignore_ascii_case(key))
    {
        let after = k + "\"label\"".len();
        let colon = after + content[after..].find(':')?;
        let quote = colon + content[colon..].find('"')?;
        return Some(quote + 1);
    }
    if content.contains('{') {
        return None; // JSON without a label field: no token to read
    }
    content.find(|c: char| c.is_alphanumeric())
}

/// Fits the label-free prior correction on a batch of score vectors (several clips answered by
/// the same model) and returns the corrected decision for each. A single answer cannot be
/// corrected: its own mean is itself.
pub fn correct_batch(scores: &[Vec<f64>], k: usize, method: Method) -> (Correction, Vec<usize>) {
    // Zero scores would make the log correction −∞; a floor keeps every class reachable.
    let floored: Vec<Vec<f64>> = scores
        .iter()
        .map(|s| s.iter().map(|x| x.max(1e-6)).collect())
        .collect();
    let c = fit(method, &floored, k);
    let decisions = floored.iter().map(|s| c.predict(s)).collect();
    (c, decisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dfew() -> LabelSet {
        LabelSet::dfew()
    }

    fn label_of(a: &Answer) -> Option<usize> {
        match a {
            Answer::Parsed { label, .. } => Some(*label),
            Answer::Unparsed { .. } => None,
        }
    }

    #[test]
    fn fenced_prose_synonyms_and_case() {
        let l = dfew();
        let t = "Sure! Here is my answer:\n```json\n{\"label\": \"Happiness\", \"scores\": {\"HAPPY\": 0.6, \"sadness\": 0.2, \"neutral\": 0.2}, \"rationale\": \"smile {wide}\"}\n```\nHope this helps.";
        let a = parse_answer(t, &l);
        match &a {
            Answer::Parsed {
                label,
                scores,
                rationale,
            } => {
                assert_eq!(l.name(*label), "happy");
                assert!((scores[l.canonical("sad").unwrap()] - 0.2).abs() < 1e-9);
                assert_eq!(rationale.as_deref(), Some("smile {wide}"));
            }
            _ => panic!("{a:?}"),
        }
        assert_eq!(
            label_of(&parse_answer("  **Anger**.", &l)),
            l.canonical("angry")
        );
    }

    #[test]
    fn never_invents_a_label() {
        let l = dfew();
        for t in [
            "I cannot tell.",
            "{\"label\": \"pain\"}",
            "```\nnot json\n```",
            "",
            "happy or sad",
        ] {
            assert_eq!(
                parse_answer(t, &l),
                Answer::Unparsed { raw: t.to_string() },
                "{t}"
            );
        }
        // An out-of-set label with in-set scores: the scores decide.
        let a = parse_answer(
            "{\"label\": \"pain\", \"scores\": {\"fear\": 0.7, \"sad\": 0.3}}",
            &l,
        );
        assert_eq!(label_of(&a), l.canonical("fear"));
    }

    fn tok(t: &str, top: &[(&str, f64)]) -> TokenLogprob {
        TokenLogprob {
            token: t.into(),
            logprob: top.first().map(|x| x.1).unwrap_or(0.0),
            top: top.iter().map(|(s, p)| (s.to_string(), p.ln())).collect(),
        }
    }

    #[test]
    fn logprobs_of_the_label_token() {
        let l = dfew();
        let content = "{\"label\": \"happy\"}";
        let tokens = vec![
            tok("{\"", &[]),
            tok("label", &[]),
            tok("\":", &[]),
            tok(" \"", &[]),
            tok(
                "happy",
                &[("happy", 0.6), ("sad", 0.2), ("s", 0.1), ("pain", 0.1)],
            ),
            tok("\"}", &[]),
        ];
        let p = label_probs(content, &tokens, &l).unwrap();
        let i = |n: &str| l.canonical(n).unwrap();
        // "s" begins sad and surprise; "pain" begins nothing and is left out.
        let z = 0.6 + 0.2 + 0.1;
        assert!((p[i("happy")] - 0.6 / z).abs() < 1e-9);
        assert!((p[i("sad")] - 0.25 / z).abs() < 1e-9);
        assert!((p[i("surprise")] - 0.05 / z).abs() < 1e-9);
        // A token that also carries the opening quote.
        let tokens = vec![
            tok("{\"label\": ", &[]),
            tok("\"sad", &[("\"sad", 0.5), ("\"neutral", 0.5)]),
            tok("\"}", &[]),
        ];
        let p = label_probs("{\"label\": \"sad\"}", &tokens, &l).unwrap();
        assert!((p[i("sad")] - 0.5).abs() < 1e-9 && (p[i("neutral")] - 0.5).abs() < 1e-9);
        // Tokens that do not spell the content: no attribution.
        let tokens = [tok("{\"label\": \"", &[]), tok("x", &[("sad", 0.5)])];
        assert_eq!(label_probs("{\"label\": \"sad\"}", &tokens[1..], &l), None);
        // Bare answers.
        let p = label_probs(
            " Fear",
            &[tok(" Fear", &[(" Fear", 0.9), (" Sad", 0.1)])],
            &l,
        )
        .unwrap();
        assert!((p[i("fear")] - 0.9).abs() < 1e-9);
    }

    #[test]
    fn batch_correction_promotes_starved_classes() {
        // A model that always leans to class 0: the correction divides the lean out.
        let scores = vec![
            vec![0.6, 0.4, 0.0],
            vec![0.7, 0.3, 0.0],
            vec![0.5, 0.1, 0.4],
            vec![0.8, 0.2, 0.0],
        ];
        let (_, d) = correct_batch(&scores, 3, Method::BatchPrior);
        assert_eq!(d[2], 2);
        assert!(d.contains(&1));
    }
}
