//! `zookeeper`: ZooKeeper's own protocol, through the `zookeeper-client` crate (async,
//! tokio). Each worker holds one session on one member (connect string: that member
//! only), so a plain read is served by the member the worker is bound to.
//!
//! ```text
//!   read   [sync(path)] get_data(path)          NoNode: null; version: the node's mzxid
//!   write  set_data(path, v, any version)        NoNode: create(path, v)
//!   cas    get_data, compare the value, then     BadVersion, NoNode, NodeExists: fail
//!          set_data(path, new, version read)     (old null: create(path, new))
//! ```
//!
//! A key `k` is the znode `/k`, with `%` and `/` percent-encoded (one flat level: no
//! parents to create). Versions: the `mzxid` of the node read or written, the zxid of
//! the transaction that last changed it; zxids grow with every change to the store.
//!
//! Sessions: a session can only be created through the leader, so every worker's is
//! opened before the run starts ([`Client::connect`]). A worker whose session ended
//! (expired while its member was cut off) opens a new one before its next call; if
//! that fails nothing was sent, and the call is [`Outcome::Refused`]. A connection
//! lost (or a timeout) after a mutation was sent is `info`, as for any protocol.

use crate::call::{BoxFuture, Call, Client, Outcome};
use crate::Error;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use zookeeper_client as zk;

/// `--read-mode` for the zookeeper client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// `get_data` alone: the connected member's state, which may be behind the leader's.
    #[default]
    Plain,
    /// `sync`, then `get_data`: the member catches up with the leader first.
    Sync,
}

/// The session timeout asked for (the server keeps it within 2 to 20 ticks: 1 to
/// 10 s in the lab).
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// How often a write retries after losing a create race (another worker created the
/// node between its NoNode and its create).
const WRITE_ATTEMPTS: usize = 10;

/// The ZooKeeper client. Unbound as built; [`Client::open`] binds a copy to a member.
#[derive(Debug, Clone)]
pub struct ZooKeeper {
    read_mode: ReadMode,
    timeout: Duration,
    /// `ADDR:PORT` of the member, once bound.
    host: Option<String>,
    /// The worker's session, opened by `connect` or on first use.
    session: Arc<Mutex<Option<zk::Client>>>,
}

impl ZooKeeper {
    /// A client whose calls (and session creation) give up after `timeout`.
    pub fn new(read_mode: ReadMode, timeout: Duration) -> Result<ZooKeeper, Error> {
        Ok(ZooKeeper {
            read_mode,
            timeout,
            host: None,
            session: Arc::default(),
        })
    }

    /// The worker's session, a new one if it has none or it ended. `Err`: none could
    /// be made (nothing was sent).
    async fn session(&self) -> Result<zk::Client, String> {
        let Some(host) = &self.host else {
            return Err("client not opened".into());
        };
        let mut session = self.session.lock().await;
        if let Some(c) = session.as_ref() {
            if !c.state().is_terminated() {
                return Ok(c.clone());
            }
        }
        *session = None;
        let connect = zk::Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_fail_eagerly()
            .connect(host);
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(c)) => {
                *session = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => Err(format!("no session with {host}: {e}")),
            Err(_) => Err(format!("no session with {host} after {:?}", self.timeout)),
        }
    }

    async fn run(&self, call: &Call) -> Outcome {
        let zk = match self.session().await {
            Ok(c) => c,
            Err(why) => return Outcome::Refused(why),
        };
        let path = znode(call.key());
        match call {
            Call::Read { .. } => self.read(&zk, &path).await,
            Call::Write { value, .. } => write(&zk, &path, *value).await,
            Call::Cas { old, new, .. } => cas(&zk, &path, *old, *new).await,
            other => Outcome::Fail(format!(
                "the zookeeper client has no `{}` for this workload",
                other.f()
            )),
        }
    }

    async fn read(&self, zk: &zk::Client, path: &str) -> Outcome {
        if self.read_mode == ReadMode::Sync {
            if let Err(e) = zk.sync(path).await {
                return Outcome::Fail(format!("sync: {e}"));
            }
        }
        match zk.get_data(path).await {
            Ok((data, stat)) => match value_of(&data) {
                Ok(v) => Outcome::Ok {
                    value: v.into(),
                    version: version(&stat),
                },
                Err(why) => Outcome::Fail(why),
            },
            Err(zk::Error::NoNode) => Outcome::ok(serde_json::Value::Null),
            Err(e) => Outcome::Fail(e.to_string()),
        }
    }
}

/// `set_data` with any version; an absent node is created.
async fn write(zk: &zk::Client, path: &str, value: i64) -> Outcome {
    let data = value.to_string();
    for _ in 0..WRITE_ATTEMPTS {
        match zk.set_data(path, data.as_bytes(), None).await {
            Ok(stat) => return written(&stat),
            Err(zk::Error::NoNode) => {}
            Err(e) => return after_sending(e),
        }
        match zk.create(path, data.as_bytes(), &create_options()).await {
            Ok((stat, _)) => return written(&stat),
            // Created by another worker since: set it.
            Err(zk::Error::NodeExists) => {}
            Err(e) => return after_sending(e),
        }
    }
    Outcome::Fail(format!(
        "lost {WRITE_ATTEMPTS} races between set_data and create"
    ))
}

/// A read, then `set_data` on the version read (`create` when `old` is null and the
/// node absent). Until the update is sent nothing was written: errors are `fail`.
async fn cas(zk: &zk::Client, path: &str, old: Option<i64>, new: i64) -> Outcome {
    let data = new.to_string();
    let found = match zk.get_data(path).await {
        Ok((bytes, stat)) => match value_of(&bytes) {
            Ok(v) => Some((v, stat)),
            Err(why) => return Outcome::Fail(why),
        },
        Err(zk::Error::NoNode) => None,
        Err(e) => return Outcome::Fail(format!("reading before the compare: {e}")),
    };
    match (found, old) {
        (None, None) => match zk.create(path, data.as_bytes(), &create_options()).await {
            Ok((stat, _)) => written(&stat),
            Err(zk::Error::NodeExists) => Outcome::Fail("compare failed: created meanwhile".into()),
            Err(e) => after_sending(e),
        },
        (None, Some(_)) => Outcome::Fail("compare failed: absent".into()),
        (Some((v, stat)), old) if v == old => {
            match zk.set_data(path, data.as_bytes(), Some(stat.version)).await {
                Ok(stat) => written(&stat),
                Err(zk::Error::BadVersion) => {
                    Outcome::Fail("compare failed: changed since read".into())
                }
                Err(zk::Error::NoNode) => Outcome::Fail("compare failed: deleted".into()),
                Err(e) => after_sending(e),
            }
        }
        (Some((v, _)), _) => Outcome::Fail(format!("compare failed: found {v:?}")),
    }
}

fn create_options() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn written(stat: &zk::Stat) -> Outcome {
    Outcome::Ok {
        value: serde_json::Value::Null,
        version: version(stat),
    }
}

/// A node's version for the history: its `mzxid`, when it is one (never negative).
fn version(stat: &zk::Stat) -> Option<u64> {
    u64::try_from(stat.mzxid).ok().filter(|&v| v > 0)
}

/// A mutation's error once it was sent: `fail` only for answers that prove it was not
/// applied; a lost connection, a timeout or an expired session may hide a commit.
pub fn after_sending(e: zk::Error) -> Outcome {
    match e {
        zk::Error::NoNode
        | zk::Error::NodeExists
        | zk::Error::BadVersion
        | zk::Error::NoAuth
        | zk::Error::BadArguments(_)
        | zk::Error::InvalidAcl
        | zk::Error::NotReadOnly
        | zk::Error::Throttled
        | zk::Error::Unimplemented => Outcome::Fail(e.to_string()),
        e => Outcome::Info(e.to_string()),
    }
}

/// A register's value as stored: decimal digits. Anything else is not ours.
pub fn value_of(data: &[u8]) -> Result<Option<i64>, String> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "the node holds {:?}, not an integer",
                String::from_utf8_lossy(&data[..data.len().min(40)])
            )
        })
}

/// The znode of a key: `/` and the key, `%` and `/` percent-encoded.
pub fn znode(key: &str) -> String {
    let mut path = String::with_capacity(key.len() + 1);
    path.push('/');
    for c in key.chars() {
        match c {
            '%' => path.push_str("%25"),
            '/' => path.push_str("%2F"),
            c => path.push(c),
        }
    }
    path
}

/// `ADDR:PORT` from a member's URL (`zk://ADDR:PORT`, or `ADDR:PORT`).
fn host_of(node: &str) -> Result<String, Error> {
    crate::call::addr_port(node, "zk", "zookeeper")
}

impl Client for ZooKeeper {
    fn open(&self, node: &str) -> Result<Box<dyn Client>, Error> {
        Ok(Box::new(ZooKeeper {
            read_mode: self.read_mode,
            timeout: self.timeout,
            host: Some(host_of(node)?),
            session: Arc::default(),
        }))
    }

    fn connect(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // A failure is no error here: the first call tries again.
            let _ = self.session().await;
        })
    }

    fn invoke<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.run(call).await.for_call(call) })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Dropping the last handle closes the session.
            self.session.lock().await.take();
        })
    }

    fn supports(&self, f: &str) -> bool {
        matches!(f, "read" | "write" | "cas")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_flat_znodes() {
        assert_eq!(znode("splitbrain/run-1/3"), "/splitbrain%2Frun-1%2F3");
        assert_eq!(znode("a%b"), "/a%25b");
    }

    #[test]
    fn member_urls_are_zk_addresses() {
        assert_eq!(host_of("zk://10.77.1.1:2181").unwrap(), "10.77.1.1:2181");
        assert_eq!(host_of("10.77.1.1:2181").unwrap(), "10.77.1.1:2181");
        let e = host_of("http://10.77.1.1:2379").unwrap_err().to_string();
        assert!(e.contains("zk://"), "{e}");
        assert!(host_of("zk://10.77.1.1").is_err());
    }

    #[test]
    fn only_answers_that_prove_nothing_applied_are_fails() {
        assert!(matches!(
            after_sending(zk::Error::BadVersion),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            after_sending(zk::Error::NodeExists),
            Outcome::Fail(_)
        ));
        for e in [
            zk::Error::ConnectionLoss,
            zk::Error::Timeout,
            zk::Error::SessionExpired,
            zk::Error::ClientClosed,
        ] {
            assert!(matches!(after_sending(e), Outcome::Info(_)));
        }
    }

    #[test]
    fn values_are_decimal_integers() {
        assert_eq!(value_of(b"42"), Ok(Some(42)));
        assert_eq!(value_of(b"-7"), Ok(Some(-7)));
        assert!(value_of(b"").is_err());
        assert!(value_of(b"4 2").is_err());
        assert!(value_of(&[0xff]).is_err());
    }
}
