//! The native driver: each query on its own thread, at most the plan's `max_in_flight` at once.

use std::sync::mpsc;

use super::{AskError, AskFlow, AskOutcome, Query, Reply, Step};

/// Runs the flow to its end. `answer` puts one query to the VLM (blocking); after a failure no
/// further query starts, and the call returns once those in flight have ended.
pub fn drive<E: Send>(
    mut flow: AskFlow<E>,
    answer: &(dyn Fn(&Query) -> Result<Reply, E> + Sync),
) -> Result<AskOutcome, AskError<E>> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        loop {
            match flow.poll() {
                Step::Send(query) => {
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let reply = answer(&query);
                        // The flow may have ended already; a late answer is dropped.
                        let _ = tx.send((query.id, reply));
                    });
                }
                Step::Wait => match rx.recv() {
                    Ok((id, reply)) => flow.reply(id, reply),
                    Err(_) => unreachable!("a sender lives in every query thread and here"),
                },
                Step::Done => break,
            }
        }
    });
    flow.finish()
}
