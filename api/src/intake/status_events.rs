//! Live status for the form page: one pattern subscription per api process to the status
//! channels the workers publish on, fanned out to every open event stream. Pub/sub
//! connections die silently when Redis drops them (docs/contract.md §9), so the subscriber runs in
//! a loop that resubscribes, and after every (re)subscription it tells the streams to
//! re-read the status record, which covers whatever was published while it was away.

use std::time::Duration;

use tokio::sync::broadcast;

/// A status change: the registration id and the status record as JSON, or a resync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusEvent {
    Changed {
        id: String,
        record: String,
    },
    /// The subscription was (re)established: re-read, something may have been missed.
    Resync,
}

#[derive(Clone)]
pub struct StatusHub {
    sender: broadcast::Sender<StatusEvent>,
}

impl StatusHub {
    /// Starts the subscriber; it runs for the life of the process.
    pub fn start(redis_url: &str, channel_prefix: String) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let (sender, _) = broadcast::channel(1024);
        let hub = Self { sender };
        let publish = hub.sender.clone();
        tokio::spawn(async move {
            let pattern = format!("{channel_prefix}*");
            let mut delay = Duration::from_millis(100);
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                        Ok(()) => {
                            delay = Duration::from_millis(100);
                            tracing::debug!("subscribed to status events");
                            let _ = publish.send(StatusEvent::Resync);
                            let mut messages = pubsub.into_on_message();
                            use futures::StreamExt;
                            while let Some(message) = messages.next().await {
                                let channel = message.get_channel_name().to_owned();
                                let Some(id) = channel.strip_prefix(&channel_prefix) else {
                                    continue;
                                };
                                if let Ok(record) = message.get_payload::<String>() {
                                    let _ = publish.send(StatusEvent::Changed {
                                        id: id.to_owned(),
                                        record,
                                    });
                                }
                            }
                            tracing::warn!("status event subscription lost; resubscribing");
                        }
                        Err(err) => tracing::warn!(error = %err, "status events: subscribe failed"),
                    },
                    Err(err) => tracing::debug!(error = %err, "status events: Redis unreachable"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.sender.subscribe()
    }
}
