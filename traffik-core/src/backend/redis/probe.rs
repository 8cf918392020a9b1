//! What `connect` proves before it answers Ok: the credentials are accepted, the user may run
//! every command traffik needs on the namespace's keys, and the scripts load; and what it reads:
//! the eviction policy, which decides whether limits stay exact under memory pressure.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};

use super::connection::Handle;
use super::error::{NAME, RedisConnectError, from_redis, timeout};
use crate::backend::BackendError;
use crate::key::namespace_prefix;

/// Runs every command the scripts need on a probe key (`lua/probe.lua`).
static PROBE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/probe.lua")));

/// What `connect` checks on the first connection before it answers Ok: [`prove`]s it (an
/// out-of-memory server is accepted with a warning: refusals still answer), and reads the
/// eviction policy (refused when `require_noeviction`).
pub(super) async fn inspect(
    connection: &mut Handle,
    namespace: &str,
    after: Duration,
    require_noeviction: bool,
) -> Result<(), RedisConnectError> {
    match prove(connection, namespace, after).await {
        Ok(()) => {}
        Err(RedisConnectError::Backend(BackendError::OutOfMemory { .. })) => {
            tracing::warn!(
                target: "traffik",
                backend = NAME,
                "Redis is out of memory at connect: decisions that store will fail with OutOfMemory until memory is freed"
            );
        }
        Err(error) => return Err(error),
    }
    match eviction(connection, after).await {
        Eviction::Evicts(policy) if require_noeviction => {
            return Err(RedisConnectError::Evicting { policy });
        }
        Eviction::Evicts(policy) => warn_about(&policy),
        Eviction::Unknown => tracing::info!(
            target: "traffik",
            backend = NAME,
            "Redis did not say its maxmemory-policy (CONFIG GET renamed or not permitted): check that it is noeviction, or limiter keys may be evicted"
        ),
        Eviction::Unbounded | Eviction::Refused => {}
    }
    Ok(())
}

/// Proves `connection` can decide on `namespace`'s keys: authentication, ACL permissions for
/// `EVALSHA`, `SCRIPT LOAD` and every command inside the scripts, script loading. A failure
/// names its cause (`NOAUTH`, `WRONGPASS`, `NOPERM` with the command) as
/// [`BackendError::Denied`](crate::backend::BackendError::Denied).
async fn prove(
    connection: &mut Handle,
    namespace: &str,
    after: Duration,
) -> Result<(), RedisConnectError> {
    // No throttle key looks like this: theirs always carry a `{identity}` hash tag.
    let key = format!("{}traffik-connect-probe", namespace_prefix(namespace));
    // `SCRIPT LOAD` first, always: a cached script would skip it, and a user without it would
    // then connect and fail every decision after the next restart or flush.
    let load = async { PROBE.prepare_invoke().load_async(connection).await };
    match tokio::time::timeout(after, load).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Err(from_redis("connect", error, after).into()),
        Err(_) => return Err(timeout("connect", after).into()),
    }
    let probe = PROBE.key(&key);
    match tokio::time::timeout(after, probe.invoke_async::<i64>(connection)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => {
            Err(with_namespace(from_redis("connect", error, after), namespace).into())
        }
        Err(_) => Err(timeout("connect", after).into()),
    }
}

/// A denial of the namespace's keys, saying which keys.
fn with_namespace(error: BackendError, namespace: &str) -> BackendError {
    match error {
        BackendError::Denied {
            backend,
            operation,
            reason,
        } if reason.contains("keys") => BackendError::Denied {
            backend,
            operation,
            reason: format!(
                "{reason} (this user may not access the backend's keys `{}*`)",
                namespace_prefix(namespace)
            ),
        },
        other => other,
    }
}

/// How the server evicts keys when it reaches `maxmemory`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Eviction {
    /// No `maxmemory` (0): nothing is ever evicted.
    Unbounded,
    /// `noeviction`: writes fail with `OOM` instead (limits stay exact; decisions fail).
    Refused,
    /// Any other policy: limiter keys can be evicted, and an evicted key is a client whose
    /// budget is full again (`allkeys-*` evicts any key; `volatile-*` evicts keys with a TTL
    /// first, and every limiter key has one).
    Evicts(String),
    /// The server would not say (`CONFIG` renamed or not permitted, as on managed services).
    Unknown,
}

/// Reads `maxmemory` and `maxmemory-policy`.
async fn eviction(connection: &mut Handle, after: Duration) -> Eviction {
    let read = |parameter: &'static str| {
        let mut connection = connection.clone();
        async move {
            let reply = tokio::time::timeout(
                after,
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(parameter)
                    .query_async::<Value>(&mut connection),
            )
            .await;
            match reply {
                Ok(Ok(value)) => config_value(value),
                _ => None,
            }
        }
    };
    let (Some(maxmemory), Some(policy)) = (read("maxmemory").await, read("maxmemory-policy").await)
    else {
        return Eviction::Unknown;
    };
    if maxmemory.trim() == "0" {
        return Eviction::Unbounded;
    }
    if policy == "noeviction" {
        Eviction::Refused
    } else {
        Eviction::Evicts(policy)
    }
}

/// The value of a `CONFIG GET` reply (`[name, value]`, or a map under RESP3).
fn config_value(reply: Value) -> Option<String> {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    match reply {
        Value::Array(items) => items.get(1).and_then(text),
        Value::Map(pairs) => pairs.first().and_then(|(_, value)| text(value)),
        _ => None,
    }
}

/// Logs (once, at connect) what an evicting policy does to limits.
fn warn_about(policy: &str) {
    tracing::warn!(
        target: "traffik",
        backend = NAME,
        policy,
        "Redis evicts keys under memory pressure (maxmemory-policy {policy}): an evicted limiter \
         key is a client whose budget is full again. Use `noeviction` to keep limits exact, or \
         `require_noeviction(true)` to refuse such a server at connect"
    );
}
