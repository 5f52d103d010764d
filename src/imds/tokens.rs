//! IMDSv2 session tokens: issued by `PUT /latest/api/token`, kept in memory only, each bound to the instance that asked for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;

/// The TTLs `X-aws-ec2-metadata-token-ttl-seconds` may ask for, in seconds (EC2's limits).
pub const TTL_SECONDS: std::ops::RangeInclusive<u64> = 1..=21_600;

/// Tokens outstanding at once; beyond it the oldest expiring are dropped (a client looping on
/// PUT must not grow ec2d's memory without bound; a dropped token reads as expired: 401, and
/// SDKs fetch a new one).
const MAX_TOKENS: usize = 65_536;

/// One issued token.
#[derive(Debug)]
struct Issued {
    instance_id: String,
    expires: Instant,
}

/// The tokens issued and not yet expired. In memory on purpose: a restart of ec2d invalidates
/// them, as a token is only ever a session (clients get a new one on 401).
#[derive(Debug, Default)]
pub struct Tokens(Mutex<HashMap<String, Issued>>);

impl Tokens {
    /// A new token for `instance_id`, valid for `ttl` from `now`.
    pub fn issue(&self, instance_id: &str, ttl: Duration, now: Instant) -> String {
        let mut bytes = [0u8; 40];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut tokens = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, issued| issued.expires > now);
        if tokens.len() >= MAX_TOKENS {
            if let Some(oldest) = tokens
                .iter()
                .min_by_key(|(_, issued)| issued.expires)
                .map(|(token, _)| token.clone())
            {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(
            token.clone(),
            Issued {
                instance_id: instance_id.to_string(),
                expires: now + ttl,
            },
        );
        token
    }

    /// Whether `token` was issued to `instance_id` and has not expired at `now` (a token of
    /// another instance is as good as none: 401).
    pub fn is_valid(&self, token: &str, instance_id: &str, now: Instant) -> bool {
        let tokens = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(token)
            .is_some_and(|issued| issued.instance_id == instance_id && issued.expires > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_instance_until_it_expires() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let token = tokens.issue("i-1", Duration::from_secs(10), now);
        assert!(tokens.is_valid(&token, "i-1", now));
        assert!(!tokens.is_valid(&token, "i-2", now));
        assert!(!tokens.is_valid("forged", "i-1", now));
        assert!(!tokens.is_valid(&token, "i-1", now + Duration::from_secs(10)));
        let other = tokens.issue("i-1", Duration::from_secs(10), now);
        assert_ne!(token, other);
    }
}
