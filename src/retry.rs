//! The one retry policy: pauses that double from `first` up to `cap`,
//! stretched by a random 0-50% so that clients failing together do not
//! retry in step, and never shorter than the server's `Retry-After`.
//!
//! It paces the retries inside one request to Adobe (CMU and DCR alike),
//! the poller's schedule after failed polls, and the restarts of a poller
//! that died.

use std::time::Duration;

/// How to space attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Pause before the first retry (before jitter).
    pub first: Duration,
    /// Longest pause (before jitter).
    pub cap: Duration,
    /// Attempts in all, the first included, for [`RetryPolicy::run`].
    pub attempts: u32,
}

/// What a failed attempt allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again, after at least the server's `Retry-After` if it gave one.
    Retry { retry_after: Option<Duration> },
    /// Give up: the error is final, or waiting would take too long.
    GiveUp,
}

impl RetryPolicy {
    /// Pause before retry number `attempt` (1 for the first retry).
    pub fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        use rand::Rng;
        let base = self
            .first
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(self.cap);
        let jitter = rand::rng().random_range(0.0..0.5);
        base.mul_f64(1.0 + jitter)
            .max(retry_after.unwrap_or_default())
    }

    /// Runs `attempt` until it succeeds, `judge` gives up on its error, or
    /// [`attempts`](Self::attempts) ran out; `wait` takes each pause (the
    /// shared clock's sleep, or the DCR pacer's hold-off).
    pub async fn run<T, E, A, AF, W, WF>(
        &self,
        mut attempt: A,
        judge: impl Fn(&E) -> Verdict,
        mut wait: W,
    ) -> Result<T, E>
    where
        A: FnMut() -> AF,
        AF: Future<Output = Result<T, E>>,
        W: FnMut(u32, Duration, &E) -> WF,
        WF: Future<Output = ()>,
    {
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(e) if tried < self.attempts => match judge(&e) {
                    Verdict::Retry { retry_after } => {
                        wait(tried, self.pause(tried, retry_after), &e).await;
                        tried += 1;
                    }
                    Verdict::GiveUp => return Err(e),
                },
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_with_jitter_up_to_the_cap_and_honour_retry_after() {
        let s = Duration::from_secs;
        let policy = RetryPolicy {
            first: s(1),
            cap: s(4),
            attempts: 3,
        };
        for attempt in 1..=4 {
            let base = (s(1) * 2u32.pow(attempt - 1)).min(s(4));
            let pause = policy.pause(attempt, None);
            assert!(
                pause >= base && pause < base.mul_f64(1.5),
                "{attempt}: {pause:?}"
            );
        }
        assert_eq!(policy.pause(1, Some(s(30))), s(30));
        assert!(policy.pause(40, None) < s(6), "no overflow far out");
    }

    #[tokio::test]
    async fn run_stops_at_success_at_a_final_error_or_after_the_attempts() {
        let policy = RetryPolicy {
            first: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            attempts: 3,
        };
        let judge = |e: &&str| {
            if *e == "final" {
                Verdict::GiveUp
            } else {
                Verdict::Retry { retry_after: None }
            }
        };
        let script = |answers: Vec<Result<u8, &'static str>>| {
            let answers = std::sync::Mutex::new(answers.into_iter());
            let waits = std::sync::atomic::AtomicU32::new(0);
            (answers, waits)
        };
        for (answers, expected, waits_expected) in [
            (vec![Err("busy"), Ok(7)], Ok(7), 1),
            (vec![Err("final"), Ok(7)], Err("final"), 0),
            (
                vec![Err("busy"), Err("busy"), Err("busy"), Ok(7)],
                Err("busy"),
                2,
            ),
        ] {
            let (answers, waits) = script(answers);
            let outcome = policy
                .run(
                    || {
                        let next = answers.lock().unwrap().next().unwrap();
                        async move { next }
                    },
                    judge,
                    |_, _, _| {
                        waits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        async {}
                    },
                )
                .await;
            assert_eq!(outcome, expected);
            assert_eq!(waits.into_inner(), waits_expected);
        }
    }
}
