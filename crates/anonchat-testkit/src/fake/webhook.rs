//! Webhook delivery: one update at a time, in order, retried until a 2xx.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::state::unix_now;
use super::Shared;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if shared.is_shutdown() {
            return;
        }
        let mut rx = shared.updates.subscribe();
        let job = {
            let st = shared.lock();
            match (&st.webhook, st.pending.front()) {
                (Some(w), Some(first)) => {
                    let url = if st.webhook_targets.is_empty() {
                        w.url.clone()
                    } else {
                        let i = rand::rng().random_range(0..st.webhook_targets.len());
                        st.webhook_targets[i].clone()
                    };
                    Some((first.update_id, first.json.clone(), url, w.secret.clone()))
                }
                _ => None,
            }
        };
        let Some((update_id, update, url, secret)) = job else {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return; },
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        };
        let mut req = shared.http.post(&url).json(&update);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let res = tokio::select! {
            r = req.send() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let error = match res {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("Wrong response from the webhook: {}", r.status())),
            Err(e) if e.is_timeout() => Some("Read timeout expired".to_owned()),
            Err(_) => Some("Connection refused".to_owned()),
        };
        match error {
            None => {
                shared.with(|st| {
                    if let Some(pos) = st.pending.iter().position(|p| p.update_id == update_id) {
                        st.pending.remove(pos);
                        st.counters.updates_confirmed += 1;
                    }
                    st.counters.webhook_deliveries += 1;
                });
                backoff = FIRST_BACKOFF;
            }
            Some(msg) => {
                shared.with(|st| {
                    st.counters.webhook_failures += 1;
                    st.last_webhook_error = Some((unix_now(), msg));
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
