//! `emolens dev-bench ANNOTATIONS [--json] [--details] [--misses] [--timelines DIR] [--seeds N]`:
//! spotting on the real-clip development set, per split.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::EXIT_BAD_INPUT;
use super::video::{AnalysisArgs, analyse};
use emolens::timeline::devbench::{DevBenchOptions, DevSet, SplitScore, evaluate_split};
use emolens::timeline::{SpotOptions, Timeline};

#[derive(Args)]
pub struct DevBenchArgs {
    /// The annotations file; the clips lie beside it (tests/data/video/dev/annotations.json).
    annotations: PathBuf,
    #[arg(long)]
    json: bool,
    /// Also print the spliced bursts per host clip and the share found per source episode.
    #[arg(long)]
    details: bool,
    /// Also list each spliced burst not found (with the event that overlapped it most) and each
    /// false event in the spliced clips, for the first seed.
    #[arg(long)]
    misses: bool,
    /// Splice with this many random draws (seeds 13, 14, ...) and also print the spliced F1's
    /// mean and range over them: one draw's F1 moves by about ±0.02 with the draw alone. With
    /// `--json`, each split's scores per seed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    seeds: u64,
    /// Keep analysed timelines here and reuse them (spotting changes need no re-analysis; the
    /// action features are recomputed from the cached landmarks, so feature changes need none
    /// either).
    #[arg(long)]
    timelines: Option<PathBuf>,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

fn load_timeline(args: &DevBenchArgs, file: &str) -> Result<Timeline, String> {
    let dir = args
        .annotations
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let cached = args
        .timelines
        .as_ref()
        .map(|d| d.join(format!("{file}.json")));
    if let Some((path, text)) = cached
        .as_ref()
        .and_then(|p| Some((p, std::fs::read_to_string(p).ok()?)))
    {
        // A timeline cached by an older version (fewer features, say) is analysed again.
        match serde_json::from_str::<Timeline>(&text) {
            Ok(mut timeline) => {
                timeline.refresh_features();
                return Ok(timeline);
            }
            Err(e) => eprintln!("{}: analysing again ({e})", path.display()),
        }
    }
    let timeline = analyse(&dir.join(file), &args.analysis)?.timeline;
    if let Some(path) = cached {
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        std::fs::write(&path, serde_json::to_string(&timeline).expect("serialises"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(timeline)
}

pub fn run(args: DevBenchArgs) -> ExitCode {
    let set: DevSet = match std::fs::read_to_string(&args.annotations)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("emolens: {}: {e}", args.annotations.display());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut analysed = Vec::new();
    for clip in &set.clips {
        match load_timeline(&args, &clip.file) {
            Ok(t) => analysed.push((clip.clone(), t)),
            Err(e) => {
                eprintln!("emolens: {}: {e}", clip.file);
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    // Each split once, in the order it first appears (clips of a split need not be adjacent).
    let mut splits: Vec<String> = Vec::new();
    for clip in &set.clips {
        if !splits.contains(&clip.split) {
            splits.push(clip.split.clone());
        }
    }
    let first_seed = DevBenchOptions::default().seed;
    let spot_options = SpotOptions::default();
    // Per split, its score with each seed (the first is the default one).
    let scores: Vec<Vec<SplitScore>> = splits
        .iter()
        .map(|split| {
            let clips: Vec<_> = analysed
                .iter()
                .filter(|(c, _)| &c.split == split)
                .cloned()
                .collect();
            (first_seed..first_seed + args.seeds)
                .map(|seed| {
                    let options = DevBenchOptions {
                        seed,
                        list_misses: args.misses && seed == first_seed,
                        ..DevBenchOptions::default()
                    };
                    evaluate_split(split, &clips, &spot_options, &options)
                })
                .collect()
        })
        .collect();
    if args.json {
        let first: Vec<&SplitScore> = scores.iter().map(|s| &s[0]).collect();
        let json = if args.seeds == 1 {
            serde_json::to_string_pretty(&first)
        } else {
            serde_json::to_string_pretty(&scores)
        };
        println!("{}", json.expect("serialises"));
        return ExitCode::SUCCESS;
    }
    for per_seed in &scores {
        let s = &per_seed[0];
        println!(
            "{}: spliced F1 {:.3} ({} bursts, {} events, {} hits), micro {:.3}, macro {:.3}; real episodes {}/{} found, F1 {:.3}",
            s.split,
            s.spliced.f1,
            s.spliced.truth,
            s.spliced.predicted,
            s.spliced.hits,
            s.spliced_micro.f1,
            s.spliced_macro.f1,
            s.real.hits,
            s.real.truth,
            s.real.f1
        );
        if per_seed.len() > 1 {
            let mean = |f: fn(&SplitScore) -> f64| {
                per_seed.iter().map(f).sum::<f64>() / per_seed.len() as f64
            };
            let (lo, hi) = per_seed.iter().fold((1.0f64, 0.0f64), |(lo, hi), s| {
                (lo.min(s.spliced.f1), hi.max(s.spliced.f1))
            });
            println!(
                "  over {} seeds ({first_seed}–{}): spliced F1 {:.3} ({lo:.3}–{hi:.3}), micro {:.3}, macro {:.3}",
                per_seed.len(),
                first_seed + per_seed.len() as u64 - 1,
                mean(|s| s.spliced.f1),
                mean(|s| s.spliced_micro.f1),
                mean(|s| s.spliced_macro.f1)
            );
        }
        for (kind, m) in &s.spliced_by_host {
            println!(
                "  spliced into {kind:<12} F1 {:.3} ({} bursts, {} events, {} hits)",
                m.f1, m.truth, m.predicted, m.hits
            );
        }
        let o = &s.outcomes;
        let missed = o.bursts - o.found;
        println!(
            "  bursts by the event overlapping each most: {} found, {} the other length class, \
             {} merged into a longer event, {} cut short, {} with no event ({} of them under {} \
             in every channel); {} of the {missed} not found on or beside a movement marked in \
             the host",
            o.found,
            o.wrong_kind,
            o.merged,
            o.cut_short,
            o.no_event,
            o.no_event_under_high,
            spot_options.high,
            o.missed_beside_marked
        );
        for m in &s.misses {
            let by = match (&m.event, &m.unseen) {
                (Some(e), _) => format!(
                    ": event {}–{} {:?}, IoU {:.2}, {}",
                    e.frames.0, e.frames.1, e.kind, e.iou, e.moved
                ),
                (None, Some(u)) => format!(": {}", u.words()),
                (None, None) => String::new(),
            };
            println!(
                "    missed {} {}–{} ({:.2} s) from {}{}: {}{by}",
                m.host,
                m.frames.0,
                m.frames.1,
                m.seconds,
                m.source,
                if m.beside_marked {
                    ", beside a marked movement"
                } else {
                    ""
                },
                m.outcome.words()
            );
        }
        for f in &s.false_events {
            println!(
                "    false {} {}–{} {:?}: {}",
                f.host, f.frames.0, f.frames.1, f.kind, f.moved
            );
        }
        if args.details {
            for (file, m) in &s.spliced_by_host_clip {
                println!(
                    "    in {file:<24} F1 {:.3} ({} bursts, {} events, {} hits)",
                    m.f1, m.truth, m.predicted, m.hits
                );
            }
            for (origin, f) in &s.found_by_source {
                println!("    from {origin:<22} {}/{} found", f.found, f.bursts);
            }
        }
        for (kind, c) in &s.controls {
            let marked = if c.on_marked > 0 {
                format!(" ({} on marked movements)", c.on_marked)
            } else {
                String::new()
            };
            let seen = if c.marked > 0 {
                format!(
                    "; {} marked movements, {} with an event",
                    c.marked, c.marked_found
                )
            } else {
                String::new()
            };
            println!(
                "  control {kind:<12} {} clip(s), {:.2} min: {} events{marked}, {:.1} false/min{seen}; \
                 started late: {:.1} false/min in the first second ({} false events, {} cuts); \
                 stopped early: {:.1} in the last ({} false events, {} cuts)",
                c.clips,
                c.minutes,
                c.events,
                c.false_per_minute,
                c.late_start_false_per_minute,
                c.late_start_false,
                c.late_starts,
                c.early_stop_false_per_minute,
                c.early_stop_false,
                c.early_stops
            );
        }
    }
    ExitCode::SUCCESS
}
