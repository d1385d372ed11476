//! The tests' shortcut to the core ask flow: one conversation rendered per label order.

use emolens::ask::{AskPlan, AskResult, CorrectionPlan, Question};
use emolens::labels::LabelSet;
use emolens::prompt::{LabelOrdering, Message, label_orders};
use emolens::remote::client::{AskFailure, Client};
use emolens::remote::request::ordered_names;
use emolens::remote::{AskOptions, RemoteError};
/// Asks `messages` (rendered per label order) in `k` orders through the core flow.
pub fn ask(
    client: &Client<'_>,
    labels: &LabelSet,
    opts: &(AskOptions, usize),
    messages: &dyn Fn(&[String]) -> Vec<Message>,
) -> Result<AskResult, RemoteError> {
    let (opts, k) = opts;
    let orders = label_orders(labels.len(), *k, LabelOrdering::Cyclic);
    let conversations = orders
        .iter()
        .map(|perm| {
            let order = ordered_names(labels, perm);
            let m = messages(&order);
            (order, m)
        })
        .collect();
    let plan = AskPlan {
        labels: labels.clone(),
        question: Question::Conversations(conversations),
        permutations: *k,
        seed: None,
        correction: CorrectionPlan::None,
        max_in_flight: 2,
        text_only: false,
    };
    match emolens::remote::client::ask(client, opts, plan) {
        Ok(outcome) => Ok(outcome.result),
        Err(AskFailure::Remote(e)) => Err(e.error),
        Err(e) => panic!("{e}"),
    }
}
