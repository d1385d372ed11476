//! The async driver, for transports that answer with futures (`fetch` and the in-page VLM):
//! at most the plan's `max_in_flight` queries pending at once, on one thread.

use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::{AskError, AskFlow, AskOutcome, Query, Reply, Step};

/// Runs the flow to its end. `on_progress(answered, total)` follows each answer. After a
/// failure no further query starts; those pending are dropped (their transport stops them).
pub async fn drive_async<E, F, Fut>(
    mut flow: AskFlow<E>,
    answer: F,
    mut on_progress: impl FnMut(usize, usize),
) -> Result<AskOutcome, AskError<E>>
where
    F: Fn(Query) -> Fut,
    Fut: Future<Output = Result<Reply, E>>,
{
    let mut pending = FuturesUnordered::new();
    loop {
        match flow.poll() {
            Step::Send(query) => {
                let id = query.id;
                let reply = answer(query);
                pending.push(async move { (id, reply.await) });
            }
            Step::Wait => match pending.next().await {
                Some((id, reply)) => {
                    flow.reply(id, reply);
                    let (done, total) = flow.progress();
                    on_progress(done, total);
                }
                None => unreachable!("the flow waits only while a query is pending"),
            },
            Step::Done => break,
        }
    }
    drop(pending);
    flow.finish()
}
