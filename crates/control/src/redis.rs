//! `redis`: Redis's own protocol (RESP) through the `redis` crate (async, tokio), for
//! Redis with Sentinel. Each worker is bound to one member (`redis://ADDR:6379`) and
//! finds the primary the way applications do: it asks *its member's* sentinel
//! (`ADDR:26379`, `SENTINEL MASTER splitbrain`) before each call that goes to the
//! primary, so it follows a failover as soon as that sentinel knows of it, and a
//! worker whose member is cut off with the old primary keeps writing there.
//!
//! ```text
//!   read    GET k                primary, or the worker's own member (--read-mode replica)
//!   write   SET k v [WAIT r ms]  primary
//!   cas     EVAL <script> 1 k old new [WAIT r ms]   primary; 0: the compare failed
//!   add     SADD k v [WAIT r ms] primary (set); INCRBY k d for the counter
//!   read    SMEMBERS k           always the worker's own member: the set workload
//!                                reads only at the end, on every member, to see what
//!                                each one kept
//! ```
//!
//! Compare-and-set is a Lua script (`EVAL`), not WATCH/MULTI/EXEC: Redis runs a
//! script atomically, in one request and one answer, so its outcome is as clear as a
//! SET's (lost after sending: `info`), and a concurrent writer cannot make it fail
//! spuriously. WATCH/MULTI needs four round trips on one connection, aborts when any
//! other client touches the key (even to the same value), and a connection lost
//! between EXEC's send and its answer leaves the same doubt with more ways to reach it.
//!
//! `--write-mode wait` follows each mutation with `WAIT r 1000` in the same pipeline,
//! `r` being the replicas that make a majority with the primary (1 of 2, 2 of 4, from
//! the sentinel's count, and never fewer than 1). Fewer acknowledgements: `info`, since the write is on the
//! primary and may survive. The Redis docs say WAIT does not make Redis strongly
//! consistent (a failover may still pick a replica that missed the write); the
//! findings measure it.
//!
//! Outcomes: no connection to the sentinel or the primary (nothing sent):
//! [`Outcome::Refused`]; an error answer (`READONLY` from a demoted primary,
//! `-ERR`): `fail`, and the worker asks its sentinel again; a timeout or a connection
//! lost after sending: `info`.

use crate::call::{BoxFuture, Call, Client, Outcome};
use crate::Error;
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The name the lab's sentinels monitor the primary under
/// (`splitbrain_cluster`'s Redis plug-in).
pub const MASTER_NAME: &str = "splitbrain";
/// The sentinels' port on each member's address.
pub const SENTINEL_PORT: u16 = 26379;
/// How long `WAIT` waits for replicas, in milliseconds.
const WAIT_MS: u64 = 1000;
/// How long asking the sentinel may take: a silent one (its member cut off from the
/// harness) must not eat the whole op timeout.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-set, atomically on the server: `ARGV[1]` is the expected value, empty
/// for "absent" (values are integers, never empty).
const CAS_SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
if (ARGV[1] == '' and v == false) or v == ARGV[1] then \
redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0";

/// `--read-mode` for the redis client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Reads go to the primary the worker's sentinel names.
    #[default]
    Primary,
    /// Reads go to the worker's own member, a replica most of the time.
    Replica,
}

/// `--write-mode` for the redis client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// The primary's acknowledgement is enough.
    #[default]
    Plain,
    /// `WAIT` for a majority's replicas; fewer: `info`.
    Wait,
}

/// The Redis client. Unbound as built; [`Client::open`] binds a copy to a member.
#[derive(Debug, Clone)]
pub struct Redis {
    read_mode: ReadMode,
    write_mode: WriteMode,
    timeout: Duration,
    /// The member's address, once bound.
    host: Option<String>,
    /// The primary its sentinel last named, and the replicas it knew.
    primary: Arc<Mutex<Option<(String, usize)>>>,
    /// Open connections by `ADDR:PORT`.
    conns: Arc<Mutex<HashMap<String, MultiplexedConnection>>>,
}

impl Redis {
    pub fn new(
        read_mode: ReadMode,
        write_mode: WriteMode,
        timeout: Duration,
    ) -> Result<Redis, Error> {
        Ok(Redis {
            read_mode,
            write_mode,
            timeout,
            host: None,
            primary: Arc::default(),
            conns: Arc::default(),
        })
    }

    /// A connection to `addr`, the open one if any. `Err`: none could be made, nothing
    /// was sent.
    async fn conn(&self, addr: &str, timeout: Duration) -> Result<MultiplexedConnection, String> {
        if let Some(c) = self.conns.lock().await.get(addr) {
            return Ok(c.clone());
        }
        let client = redis::Client::open(format!("redis://{addr}/"))
            .map_err(|e| format!("bad address {addr}: {e}"))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        let c = match tokio::time::timeout(
            timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("connect {addr}: {e}")),
            Err(_) => return Err(format!("connect {addr}: no connection after {timeout:?}")),
        };
        self.conns.lock().await.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    async fn forget(&self, addr: &str) {
        self.conns.lock().await.remove(addr);
    }

    /// The primary (`ADDR:PORT`) and its replica count, as the worker's sentinel says
    /// now; the last known ones if the sentinel does not answer. `Err`: neither.
    async fn primary(&self) -> Result<(String, usize), String> {
        let host = self.host.as_deref().ok_or("client not opened")?;
        let sentinel = format!("{host}:{SENTINEL_PORT}");
        let asked = async {
            let mut c = self.conn(&sentinel, SENTINEL_TIMEOUT).await?;
            let mut cmd = redis::cmd("SENTINEL");
            cmd.arg("MASTER").arg(MASTER_NAME);
            let q = cmd.query_async::<Vec<String>>(&mut c);
            match tokio::time::timeout(SENTINEL_TIMEOUT, q).await {
                Ok(Ok(fields)) => parse_master(&fields),
                Ok(Err(e)) => Err(format!("sentinel {sentinel}: {e}")),
                Err(_) => Err(format!("sentinel {sentinel}: no answer")),
            }
        };
        let mut known = self.primary.lock().await;
        match asked.await {
            Ok(p) => {
                *known = Some(p.clone());
                Ok(p)
            }
            Err(why) => {
                self.forget(&sentinel).await;
                known.clone().ok_or(why)
            }
        }
    }

    /// Runs `pipe` on the connection to `addr`, classifying what went wrong.
    async fn query<T: redis::FromRedisValue>(
        &self,
        addr: &str,
        pipe: &redis::Pipeline,
    ) -> Result<T, Failure> {
        let mut c = self
            .conn(addr, self.timeout)
            .await
            .map_err(Failure::Refused)?;
        match tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                self.forget(addr).await;
                Err(Failure::Unknown(format!("{addr}: {e}")))
            }
            Ok(Err(e)) => {
                // An error answer: nothing was applied. A demoted primary says
                // READONLY: ask the sentinel again next time (it always does).
                Err(Failure::Answer(format!("{addr}: {e}")))
            }
            Err(_) => {
                self.forget(addr).await;
                Err(Failure::Unknown(format!(
                    "{addr}: no answer within {:?}",
                    self.timeout
                )))
            }
        }
    }

    /// Where a read goes.
    async fn read_target(&self, own: bool) -> Result<String, String> {
        let host = self.host.as_deref().ok_or("client not opened")?;
        if own || self.read_mode == ReadMode::Replica {
            return Ok(format!("{host}:6379"));
        }
        Ok(self.primary().await?.0)
    }

    async fn read(&self, key: &str, set: bool) -> Outcome {
        let addr = match self.read_target(set).await {
            Ok(a) => a,
            Err(why) => return Outcome::Refused(why),
        };
        let mut pipe = redis::pipe();
        if set {
            pipe.cmd("SMEMBERS").arg(key);
            match self.query::<(Vec<String>,)>(&addr, &pipe).await {
                Ok((members,)) => match members
                    .iter()
                    .map(|m| m.parse::<i64>())
                    .collect::<Result<Vec<i64>, _>>()
                {
                    Ok(mut v) => {
                        v.sort_unstable();
                        Outcome::ok(Value::from(v))
                    }
                    Err(_) => Outcome::Fail(format!("{addr}: a set member is not an integer")),
                },
                Err(f) => f.outcome(),
            }
        } else {
            pipe.cmd("GET").arg(key);
            match self.query::<(Option<String>,)>(&addr, &pipe).await {
                Ok((None,)) => Outcome::ok(Value::Null),
                Ok((Some(v),)) => match v.parse::<i64>() {
                    Ok(v) => Outcome::ok(Value::from(v)),
                    Err(_) => Outcome::Fail(format!("{addr}: value `{v}` is not an integer")),
                },
                Err(f) => f.outcome(),
            }
        }
    }

    /// A mutation on the primary, with `WAIT` in `wait` mode. `counted`: whether the
    /// command's integer answer says it took effect (a cas script's 1).
    async fn mutate(&self, mut pipe: redis::Pipeline, counted: bool) -> Outcome {
        let (addr, replicas) = match self.primary().await {
            Ok(p) => p,
            Err(why) => return Outcome::Refused(why),
        };
        let wanted = wait_for(replicas);
        match self.write_mode {
            WriteMode::Plain => match self.query::<(redis::Value,)>(&addr, &pipe).await {
                Ok((answer,)) => applied(&addr, counted, &answer),
                Err(f) => f.outcome(),
            },
            WriteMode::Wait => {
                pipe.cmd("WAIT").arg(wanted).arg(WAIT_MS);
                match self.query::<(redis::Value, i64)>(&addr, &pipe).await {
                    Ok((answer, acked)) => match applied(&addr, counted, &answer) {
                        Outcome::Ok { .. } if acked < wanted as i64 => Outcome::Info(format!(
                            "{addr}: WAIT {wanted} {WAIT_MS}: {acked} replicas acknowledged"
                        )),
                        o => o,
                    },
                    Err(f) => f.outcome(),
                }
            }
        }
    }

    async fn run(&self, call: &Call) -> Outcome {
        let mut pipe = redis::pipe();
        match call {
            Call::Read { key } | Call::ReadCounter { key } => {
                let o = self.read(key, false).await;
                match (call, o) {
                    (
                        Call::ReadCounter { .. },
                        Outcome::Ok {
                            value: Value::Null, ..
                        },
                    ) => Outcome::ok(Value::from(0)),
                    (_, o) => o,
                }
            }
            Call::ReadSet { key } => self.read(key, true).await,
            Call::Write { key, value } => {
                pipe.cmd("SET").arg(key).arg(*value);
                self.mutate(pipe, false).await
            }
            Call::AddElement { key, value } => {
                pipe.cmd("SADD").arg(key).arg(*value);
                self.mutate(pipe, false).await
            }
            Call::Increment { key, delta } => {
                pipe.cmd("INCRBY").arg(key).arg(*delta);
                self.mutate(pipe, false).await
            }
            Call::Cas { key, old, new } => {
                let old = old.map(|o| o.to_string()).unwrap_or_default();
                pipe.cmd("EVAL")
                    .arg(CAS_SCRIPT)
                    .arg(1)
                    .arg(key)
                    .arg(old)
                    .arg(*new);
                self.mutate(pipe, true).await
            }
        }
    }
}

/// How a request went wrong.
#[derive(Debug)]
enum Failure {
    /// No connection: nothing sent.
    Refused(String),
    /// An error answer: not applied.
    Answer(String),
    /// Sent, answer lost or late.
    Unknown(String),
}

impl Failure {
    fn outcome(self) -> Outcome {
        match self {
            Failure::Refused(why) => Outcome::Refused(why),
            Failure::Answer(why) => Outcome::Fail(why),
            Failure::Unknown(why) => Outcome::Info(why),
        }
    }
}

/// The outcome of a mutation's answer: a cas script's 0 is a failed compare.
fn applied(addr: &str, counted: bool, answer: &redis::Value) -> Outcome {
    match answer {
        redis::Value::Int(0) if counted => Outcome::Fail("compare failed".into()),
        redis::Value::Int(_) | redis::Value::Okay | redis::Value::SimpleString(_) => {
            Outcome::ok(Value::Null)
        }
        other => Outcome::Info(format!("{addr}: unexpected answer {other:?}")),
    }
}

/// How many replicas `WAIT` waits for: those that make a majority with the primary,
/// and at least one: a sentinel that knows of no replica (yet) must not turn WAIT
/// into `WAIT 0`, which acknowledges every write at once.
fn wait_for(replicas: usize) -> usize {
    replicas.div_ceil(2).max(1)
}

/// `SENTINEL MASTER` (a flat list of names and values) as the primary's `ADDR:PORT`
/// and how many replicas the sentinel knows.
fn parse_master(fields: &[String]) -> Result<(String, usize), String> {
    let get = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv[0] == name)
            .and_then(|kv| kv.get(1))
    };
    let ip = get("ip").ok_or("SENTINEL MASTER without ip")?;
    let port = get("port").ok_or("SENTINEL MASTER without port")?;
    let replicas = get("num-slaves").and_then(|n| n.parse().ok()).unwrap_or(0);
    Ok((format!("{ip}:{port}"), replicas))
}

/// The host of `redis://HOST:PORT`, `HOST:PORT` or `HOST`.
fn host_of(node: &str) -> Result<String, Error> {
    let rest = node.split_once("://").map_or(node, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if host.is_empty() {
        return Err(Error::Config(format!("no host in node address `{node}`")));
    }
    Ok(host.to_owned())
}

impl Client for Redis {
    fn open(&self, node: &str) -> Result<Box<dyn Client>, Error> {
        Ok(Box::new(Redis {
            host: Some(host_of(node)?),
            primary: Arc::default(),
            conns: Arc::default(),
            ..self.clone()
        }))
    }

    fn invoke<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.run(call).await.for_call(call) })
    }

    fn connect(&self) -> BoxFuture<'_, ()> {
        // Learn the primary before any fault, as a starting application would.
        Box::pin(async move {
            let _ = self.primary().await;
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.conns.lock().await.clear();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_asks_a_majority_of_the_replicas_and_never_none() {
        assert_eq!(
            [0, 1, 2, 3, 4].map(wait_for),
            [1, 1, 1, 2, 2],
            "replicas 0..=4"
        );
    }

    #[test]
    fn sentinel_master_answers_name_the_primary() {
        let f: Vec<String> = [
            "name",
            "splitbrain",
            "ip",
            "10.77.3.2",
            "port",
            "6379",
            "num-slaves",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(parse_master(&f).unwrap(), ("10.77.3.2:6379".into(), 2));
        assert!(parse_master(&f[..2]).is_err());
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert!(matches!(
            applied("a", true, &redis::Value::Int(0)),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            applied("a", true, &redis::Value::Int(1)),
            Outcome::Ok { .. }
        ));
        assert!(matches!(
            applied("a", false, &redis::Value::Int(0)),
            Outcome::Ok { .. }
        ));
        assert!(matches!(
            applied("a", false, &redis::Value::Okay),
            Outcome::Ok { .. }
        ));
        assert!(matches!(
            applied("a", false, &redis::Value::Nil),
            Outcome::Info(_)
        ));
        assert!(matches!(
            Failure::Refused("x".into()).outcome(),
            Outcome::Refused(_)
        ));
        assert!(matches!(
            Failure::Unknown("x".into()).outcome(),
            Outcome::Info(_)
        ));
        assert_eq!(host_of("redis://10.77.3.1:6379").unwrap(), "10.77.3.1");
        assert!(host_of("redis://").is_err());
    }

    #[tokio::test]
    async fn nothing_listening_is_refused_and_sends_nothing() {
        // No sentinel on loopback (the lab's listen on lab addresses only): the
        // lookup cannot connect, so the write is never sent.
        let c = Redis::new(ReadMode::Primary, WriteMode::Plain, Duration::from_secs(1))
            .unwrap()
            .open("redis://127.0.0.1:1")
            .unwrap();
        let w = Call::Write {
            key: "k".into(),
            value: 1,
        };
        assert!(matches!(c.invoke(&w).await, Outcome::Refused(_)));
    }
}
