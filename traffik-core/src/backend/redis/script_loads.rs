//! Script reloads in single flight: after a restart or `SCRIPT FLUSH`, every in-flight caller
//! meets `NOSCRIPT` at once; the `redis` crate's script invocation then sends its own
//! `SCRIPT LOAD` for each of them (about 300 loads for 300 concurrent hits). Here the first
//! caller's load is the only one: the others wait for it and take its reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::connection::Handle;

/// The last load of each script (by a hash of its code): when it completed, and its reply.
type LastLoad = Arc<tokio::sync::Mutex<Option<(Instant, Value)>>>;

/// The backend's script loads, shared by all its connections.
#[derive(Default)]
pub(super) struct ScriptLoads {
    scripts: Mutex<HashMap<u64, LastLoad>>,
}

impl ScriptLoads {
    /// Sends `load` (a `SCRIPT LOAD`) on `handle` unless a load of the same script completed
    /// after `asked`, when this caller sent the `EVALSHA` that met `NOSCRIPT`: that load most
    /// likely ran after it, so the caller takes its reply instead (`true`: skipped). "Most
    /// likely": a flush between that load and this caller's `EVALSHA` defeats it, which
    /// [`Loading`] catches when the retried `EVALSHA` meets `NOSCRIPT` again.
    async fn load(
        &self,
        handle: &mut Handle,
        load: &Cmd,
        code: u64,
        asked: Instant,
    ) -> RedisResult<(Value, bool)> {
        let last = Arc::clone(
            self.scripts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(code)
                .or_default(),
        );
        let mut last = last.lock().await;
        if let Some((completed, reply)) = last.as_ref()
            && *completed >= asked
        {
            return Ok((reply.clone(), true));
        }
        let reply = handle.req_packed_command(load).await?;
        *last = Some((Instant::now(), reply.clone()));
        Ok((reply, false))
    }
}

/// A connection whose `SCRIPT LOAD`s go through the backend's single flight.
#[derive(Clone)]
pub(super) struct Loading {
    pub(super) handle: Handle,
    pub(super) loads: Arc<ScriptLoads>,
    /// When this caller last sent an `EVALSHA` (the script invocation sends its `SCRIPT LOAD`
    /// on the same connection right after a `NOSCRIPT`).
    pub(super) evalsha_sent: Option<Instant>,
    /// The `SCRIPT LOAD` this caller skipped, trusting another caller's: sent after all if the
    /// retried `EVALSHA` still meets `NOSCRIPT`.
    pub(super) skipped_load: Option<Cmd>,
}

/// The code of a `SCRIPT LOAD`, as a hash (FNV-1a), or `None` for any other command.
fn script_load(cmd: &Cmd) -> Option<u64> {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let (Some(name), Some(sub), Some(code)) = (args.next(), args.next(), args.next()) else {
        return None;
    };
    if !name.eq_ignore_ascii_case(b"SCRIPT") || !sub.eq_ignore_ascii_case(b"LOAD") {
        return None;
    }
    Some(code.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// Whether `cmd` is an `EVALSHA`.
fn is_evalsha(cmd: &Cmd) -> bool {
    matches!(cmd.args_iter().next(), Some(Arg::Simple(name)) if name.eq_ignore_ascii_case(b"EVALSHA"))
}

impl ConnectionLike for Loading {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if let Some(code) = script_load(cmd) {
            let asked = self.evalsha_sent.unwrap_or_else(Instant::now);
            return Box::pin(async move {
                let (reply, skipped) = self.loads.load(&mut self.handle, cmd, code, asked).await?;
                self.skipped_load = skipped.then(|| cmd.clone());
                Ok(reply)
            });
        }
        if is_evalsha(cmd) {
            self.evalsha_sent = Some(Instant::now());
            if let Some(load) = self.skipped_load.take() {
                return Box::pin(async move {
                    match self.handle.req_packed_command(cmd).await {
                        // The load this caller trusted ran before another flush: load it now.
                        Err(error) if error.code() == Some("NOSCRIPT") => {
                            self.handle.req_packed_command(&load).await?;
                            self.handle.req_packed_command(cmd).await
                        }
                        other => other,
                    }
                });
            }
        }
        self.handle.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.handle.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.handle.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_script_loads_only() {
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg("return 1");
        let mut other = redis::cmd("SCRIPT");
        other.arg("FLUSH");
        assert!(script_load(&load).is_some());
        assert_eq!(script_load(&other), None);
        assert_eq!(script_load(&redis::cmd("GET")), None);
        let mut again = redis::cmd("script");
        again.arg("load").arg("return 1");
        assert_eq!(script_load(&again), script_load(&load));
    }
}
