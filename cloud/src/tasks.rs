//! Background tasks: spawned through one helper so each has a name in the logs.

use std::future::Future;

/// Every background task goes through here, so each has a name in the logs.
pub fn spawn_named<F>(name: &'static str, task: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tracing::debug!(task = name, "starting background task");
    tokio::spawn(async move {
        task.await;
        tracing::debug!(task = name, "background task ended");
    })
}
