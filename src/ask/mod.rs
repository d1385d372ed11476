//! The multi-stage ask, one state machine for every front end and every VLM.
//!
//! A plan (the clip's context or ready conversations, label orders, a long-tail correction) is
//! turned into queries in waves: stage 1 (one description per stretch between keyframes), then
//! the final question in K label orders together with the content-free question (contextual
//! calibration) in the same orders. The flow decides what to send next and what the answers
//! mean; a driver only carries queries to a VLM and replies back:
//!
//! ```text
//! loop { match flow.poll() { Send(q) => start(q), Wait => flow.reply(id, answer), Done => break } }
//! ```
//!
//! The native driver ([`drive`], threads) serves the CLI over HTTP; the page drives the same flow
//! with `fetch` or the in-page VLM (`src/web/ask.rs`). A failed query ends the flow: nothing more
//! is sent, and the error says which stage failed.

pub mod outcome;
pub mod runs;

#[cfg(not(target_arch = "wasm32"))]
mod drive;
mod drive_async;
#[cfg(not(target_arch = "wasm32"))]
pub use drive::drive;
pub use drive_async::drive_async;

use std::collections::BTreeMap;

use crate::labels::LabelSet;
use crate::prompt::{
    ClipContext, ImageDetail, LabelOrdering, Message, PromptMode, PromptOptions,
    check_permutations, content_free, final_request, label_orders, stage1_requests,
};
pub use outcome::{AskOutcome, Corrected};
pub use runs::{AskResult, Exchange, Run};

/// What is asked.
#[derive(Debug, Clone)]
pub enum Question {
    /// A clip's enriched context, in a prompt mode; stage 1 first on request.
    Clip {
        clip: ClipContext,
        mode: PromptMode,
        detail: ImageDetail,
        stage1: bool,
    },
    /// Conversations already written, one per label order (a fixed prompt rendered per order,
    /// or the requests of a built prompt).
    Conversations(Vec<(Vec<String>, Vec<Message>)>),
}

/// The long-tail correction of the decision.
#[derive(Debug, Clone, PartialEq)]
pub enum CorrectionPlan {
    None,
    /// Logit adjustment with known class priors (one per label, in the set's order).
    Priors {
        priors: Vec<f64>,
        tau: f64,
    },
    /// Contextual calibration: the same question about a content-free clip is divided out.
    ContentFree,
}

/// Everything one ask needs besides the VLM.
#[derive(Debug, Clone)]
pub struct AskPlan {
    pub labels: LabelSet,
    pub question: Question,
    /// Label orders of a clip question (a conversation list brings its own).
    pub permutations: usize,
    /// Shuffle label orders with this seed instead of rotating them.
    pub seed: Option<u64>,
    pub correction: CorrectionPlan,
    /// At most this many queries in flight.
    pub max_in_flight: usize,
    /// No query may carry an image (the summaries mode, or the caller's promise).
    pub text_only: bool,
}

/// The setting a refusal is about; each front end names it its own way (`--priors`,
/// `options.priors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Permutations,
    Priors,
    Tau,
    Stage1,
    ContentFree,
    Images,
}

/// A plan refused before anything is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    pub setting: Setting,
    pub message: String,
}

impl AskPlan {
    pub fn check(&self) -> Result<(), PlanError> {
        let refuse = |setting, message: String| Err(PlanError { setting, message });
        let n = self.labels.len();
        match &self.question {
            Question::Clip { mode, stage1, .. } => {
                let ordering = self
                    .seed
                    .map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded);
                if let Err(e) = check_permutations(n, self.permutations, ordering) {
                    return refuse(Setting::Permutations, e);
                }
                if *stage1 && (!mode.sends_images() || self.text_only) {
                    return refuse(
                        Setting::Stage1,
                        "stage 1 sends one frame per stretch, and the text-only (summaries) mode \
                         promises no pixels: drop one of them"
                            .into(),
                    );
                }
            }
            Question::Conversations(list) => {
                if list.is_empty() {
                    return refuse(
                        Setting::Permutations,
                        "there is no conversation to ask".into(),
                    );
                }
                if self.correction == CorrectionPlan::ContentFree {
                    return refuse(
                        Setting::ContentFree,
                        "the content-free question is built from a clip: ask about a video".into(),
                    );
                }
                if self.text_only
                    && list
                        .iter()
                        .flat_map(|(_, m)| m)
                        .any(|m| m.image_count() > 0)
                {
                    return refuse(
                        Setting::Images,
                        "the conversation carries images, and the text-only mode promises none: \
                         drop one of them"
                            .into(),
                    );
                }
            }
        }
        if let CorrectionPlan::Priors { priors, tau } = &self.correction {
            if priors.len() != n || priors.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
                return refuse(
                    Setting::Priors,
                    format!(
                        "needs {n} finite positive numbers, one per label ({})",
                        self.labels.names().join(", ")
                    ),
                );
            }
            if !tau.is_finite() {
                return refuse(Setting::Tau, "must be a finite number".into());
            }
        }
        Ok(())
    }
}

/// Why a query is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Purpose {
    /// Stage 1: describe the change over stretch `segment`.
    Describe { segment: usize },
    /// The final question, labels listed in `order`.
    Classify { order: Vec<String> },
    /// The content-free question, labels listed in `order`.
    ContentFree { order: Vec<String> },
}

impl Purpose {
    /// The label order a classifying query lists (`None` for a description).
    pub fn order(&self) -> Option<&[String]> {
        match self {
            Purpose::Describe { .. } => None,
            Purpose::Classify { order } | Purpose::ContentFree { order } => Some(order),
        }
    }
}

/// One conversation to put to the VLM.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Unique within the flow; the reply carries it back.
    pub id: usize,
    pub purpose: Purpose,
    pub messages: Vec<Message>,
}

/// A VLM's answer to a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Generated text (a description, or an answer the core reads a label from).
    Completion(Exchange),
    /// Closed-set scoring of a classifying query: per-label probabilities in the set's order.
    Scored(Vec<f64>),
}

/// The stage a failed query belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Describe { segment: usize },
    Classify,
    ContentFree,
}

/// A failed ask: which stage, and the VLM's error.
#[derive(Debug, Clone, PartialEq)]
pub struct AskError<E> {
    pub stage: Stage,
    pub error: E,
}

impl<E> AskError<E> {
    /// The error's message after the stage it failed in (the final question needs no name).
    pub fn in_context(&self, message: &str) -> String {
        match self.stage {
            Stage::Describe { segment } => format!("stage 1, stretch {segment}: {message}"),
            Stage::Classify => message.to_string(),
            Stage::ContentFree => format!("content-free question: {message}"),
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for AskError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.in_context(&self.error.to_string()))
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this query; give its answer to [`AskFlow::reply`].
    Send(Query),
    /// Wait for an answer in flight.
    Wait,
    /// Finished: take the result with [`AskFlow::finish`] (queries still in flight are moot).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wave {
    Stage1,
    Final,
    Finished,
}

/// The state machine. `E` is the transport's error type.
pub struct AskFlow<E> {
    plan: AskPlan,
    wave: Wave,
    queue: std::collections::VecDeque<Query>,
    purposes: BTreeMap<usize, Purpose>,
    in_flight: usize,
    next_id: usize,
    descriptions: BTreeMap<usize, String>,
    classified: BTreeMap<usize, Run>,
    content_free: BTreeMap<usize, Run>,
    answered: usize,
    total: usize,
    failure: Option<AskError<E>>,
}

impl<E> AskFlow<E> {
    /// Checks the plan and lays out the first wave.
    pub fn new(plan: AskPlan) -> Result<Self, PlanError> {
        plan.check()?;
        let mut flow = AskFlow {
            plan,
            wave: Wave::Stage1,
            queue: Default::default(),
            purposes: BTreeMap::new(),
            in_flight: 0,
            next_id: 0,
            descriptions: BTreeMap::new(),
            classified: BTreeMap::new(),
            content_free: BTreeMap::new(),
            answered: 0,
            total: 0,
            failure: None,
        };
        let stage1 = flow.stage1_queries();
        let k = flow.orders().len();
        let cf = flow.plan.correction == CorrectionPlan::ContentFree;
        flow.total = stage1.len() + k + if cf { k } else { 0 };
        if stage1.is_empty() {
            flow.start_final();
        } else {
            flow.enqueue(stage1);
        }
        Ok(flow)
    }

    /// Every query the flow would send, in order, with stage-1 descriptions not yet known (a
    /// dry run: what goes out, sending nothing).
    pub fn preview(plan: AskPlan) -> Result<Vec<Query>, PlanError> {
        let mut flow = AskFlow::<E>::new(plan)?;
        let mut all: Vec<Query> = flow.queue.drain(..).collect();
        if flow.wave == Wave::Stage1 {
            flow.start_final();
            all.extend(flow.queue.drain(..));
        }
        Ok(all)
    }

    pub fn plan(&self) -> &AskPlan {
        &self.plan
    }

    /// Queries answered so far, and all the flow will send.
    pub fn progress(&self) -> (usize, usize) {
        (self.answered, self.total)
    }

    pub fn poll(&mut self) -> Step {
        if self.failure.is_some() || self.wave == Wave::Finished {
            return Step::Done;
        }
        if self.in_flight < self.plan.max_in_flight.max(1)
            && let Some(q) = self.queue.pop_front()
        {
            self.in_flight += 1;
            return Step::Send(q);
        }
        if self.in_flight > 0 {
            return Step::Wait;
        }
        // The wave is answered: the next one, or the end.
        match self.wave {
            Wave::Stage1 => {
                self.start_final();
                self.poll()
            }
            _ => {
                self.wave = Wave::Finished;
                Step::Done
            }
        }
    }

    /// The answer to query `id`. The first failure ends the flow.
    pub fn reply(&mut self, id: usize, reply: Result<Reply, E>) {
        let Some(purpose) = self.purposes.remove(&id) else {
            return; // not ours, or answered already
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.failure.is_some() {
            return;
        }
        let stage = match &purpose {
            Purpose::Describe { segment } => Stage::Describe { segment: *segment },
            Purpose::Classify { .. } => Stage::Classify,
            Purpose::ContentFree { .. } => Stage::ContentFree,
        };
        let reply = match reply {
            Ok(r) => r,
            Err(error) => {
                self.failure = Some(AskError { stage, error });
                return;
            }
        };
        self.answered += 1;
        let labels = &self.plan.labels;
        match (purpose, reply) {
            (Purpose::Describe { segment }, Reply::Completion(x)) => {
                self.descriptions
                    .insert(segment, x.completion.content.trim().to_string());
            }
            // A scored reply carries no text: the description is left out, not invented.
            (Purpose::Describe { .. }, Reply::Scored(_)) => {}
            (Purpose::Classify { order }, reply) => {
                self.classified.insert(id, run_of(order, reply, labels));
            }
            (Purpose::ContentFree { order }, reply) => {
                self.content_free.insert(id, run_of(order, reply, labels));
            }
        }
    }

    /// The outcome once [`Step::Done`]: the decision, stage 1's descriptions and the correction;
    /// or the first failure.
    pub fn finish(self) -> Result<AskOutcome, AskError<E>> {
        if let Some(f) = self.failure {
            return Err(f);
        }
        Ok(outcome::decide(
            &self.plan,
            self.descriptions,
            self.classified.into_values().collect(),
            self.content_free.into_values().collect(),
        ))
    }

    fn enqueue(&mut self, queries: Vec<(Purpose, Vec<Message>)>) {
        for (purpose, messages) in queries {
            let id = self.next_id;
            self.next_id += 1;
            self.purposes.insert(id, purpose.clone());
            self.queue.push_back(Query {
                id,
                purpose,
                messages,
            });
        }
    }

    /// Label orders of the final question, as names.
    fn orders(&self) -> Vec<Vec<String>> {
        let labels = &self.plan.labels;
        match &self.plan.question {
            Question::Conversations(list) => list.iter().map(|(o, _)| o.clone()).collect(),
            Question::Clip { .. } => {
                let ordering = self
                    .plan
                    .seed
                    .map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded);
                label_orders(labels.len(), self.plan.permutations.max(1), ordering)
                    .iter()
                    .map(|perm| perm.iter().map(|&i| labels.name(i).to_string()).collect())
                    .collect()
            }
        }
    }

    fn stage1_queries(&self) -> Vec<(Purpose, Vec<Message>)> {
        match &self.plan.question {
            Question::Clip {
                clip,
                detail,
                stage1: true,
                ..
            } => stage1_requests(clip, *detail)
                .into_iter()
                .map(|(segment, m)| (Purpose::Describe { segment }, m))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The final question in every label order, and the content-free one beside it.
    fn start_final(&mut self) {
        self.wave = Wave::Final;
        let orders = self.orders();
        let mut queries: Vec<(Purpose, Vec<Message>)> = Vec::new();
        match &self.plan.question {
            Question::Conversations(list) => {
                for (order, messages) in list {
                    let purpose = Purpose::Classify {
                        order: order.clone(),
                    };
                    queries.push((purpose, messages.clone()));
                }
            }
            Question::Clip {
                clip, mode, detail, ..
            } => {
                let mut clip = clip.clone();
                for (segment, text) in &self.descriptions {
                    if let Some(s) = clip.segments.get_mut(*segment) {
                        s.description = Some(text.clone());
                    }
                }
                let labels = &self.plan.labels;
                let ask = |clip: &ClipContext, order: &[String]| {
                    let mut options = PromptOptions::new(*mode, labels.clone());
                    options.label_order =
                        order.iter().filter_map(|n| labels.canonical(n)).collect();
                    options.detail = *detail;
                    final_request(clip, &options)
                };
                for order in &orders {
                    let purpose = Purpose::Classify {
                        order: order.clone(),
                    };
                    queries.push((purpose, ask(&clip, order)));
                }
                if self.plan.correction == CorrectionPlan::ContentFree {
                    let blank = content_free(&clip);
                    for order in &orders {
                        let purpose = Purpose::ContentFree {
                            order: order.clone(),
                        };
                        queries.push((purpose, ask(&blank, order)));
                    }
                }
            }
        }
        self.enqueue(queries);
    }
}

fn run_of(order: Vec<String>, reply: Reply, labels: &LabelSet) -> Run {
    match reply {
        Reply::Completion(x) => Run::new(order, x, labels),
        Reply::Scored(probabilities) => Run::scored(order, probabilities, labels),
    }
}

#[cfg(test)]
mod tests;
