//! `mariadb`: MariaDB's own protocol, through the `mysql_async` crate (tokio), as the
//! lab's `splitbrain` user (only SELECT, INSERT, UPDATE, DELETE on the test database).
//! One row per key; writes always go to the primary, reads as `--read-mode` says.
//!
//! ```text
//!   read   SELECT v FROM registers WHERE k = ?             no row: null
//!   write  INSERT INTO registers VALUES (?, ?)
//!          ON DUPLICATE KEY UPDATE v = VALUES(v)
//!   cas    UPDATE registers SET v = new WHERE k = ? AND v = old
//!          (old null: INSERT, a duplicate key fails)       0 rows matched: fail
//!   add    INSERT INTO sets VALUES (?, ?)                  duplicate: already there, ok
//!   read   SELECT e FROM sets WHERE k = ? ORDER BY e       (set workload)
//! ```
//!
//! Versions: a write, cas or add records the sequence number of its GTID (`@@last_gtid`,
//! `0-SERVER-SEQ`: read right after it, so a write whose answer came but whose GTID
//! could not be read has none). Reads have none (a row does not say which transaction
//! wrote it), so the checker's version path leaves registers to the search. After a
//! failover the new primary continues from its own highest sequence number: writes
//! the old primary acknowledged but never shipped had taken the same numbers, so one
//! number may name two writes; the checker then reports "two writes created version
//! N" as a contradiction in the store's versions, which is what happened.
//!
//! The primary is found as the lab defines it: every member the client was opened on
//! is asked for `splitbrain_lab.primary_member`, and the row with the highest epoch
//! names it. A worker keeps its primary until a call there is refused, finds it
//! read-only, or loses its connection, then looks again (after a failover).
//!
//! Outcomes: a connection that cannot be made is [`Outcome::Refused`] (nothing was
//! sent); an error the server answered with is `fail` (in autocommit mode the
//! statement was rolled back); a connection lost or a timeout once the statement was
//! sent is `info`.

use crate::call::{BoxFuture, Call, Client, Outcome};
use crate::Error;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use serde_json::Value;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;
use tokio::sync::Mutex;

/// `--read-mode` for the mariadb client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Reads go to the primary, like writes.
    #[default]
    Primary,
    /// Reads go to the worker's own member, which may be a replica behind the primary.
    Replica,
}

/// The lab's client user (and password), made on every member by the lab.
const USER: &str = "splitbrain";
/// The test database.
const DATABASE: &str = "splitbrain";

/// Server errors that say the connection went away, not that the statement failed:
/// ER_CONNECTION_KILLED, ER_SERVER_SHUTDOWN, ER_QUERY_INTERRUPTED.
const CONNECTION_GONE: [u16; 3] = [1927, 1053, 1317];
/// ER_OPTION_PREVENTS_STATEMENT: `--read-only` (a replica, or a fenced old primary).
const READ_ONLY: u16 = 1290;
/// ER_DUP_ENTRY.
const DUPLICATE: u16 = 1062;

/// The MariaDB client. Unbound as built; [`Client::open`] binds a copy to a member.
#[derive(Debug, Clone)]
pub struct MariaDb {
    read_mode: ReadMode,
    timeout: Duration,
    /// `ADDR:PORT` of the member, once bound.
    own: Option<String>,
    /// Every member any copy was opened on: where the primary is looked for. The
    /// runner opens a copy on every node (for the final reads) before any call.
    members: Arc<SyncMutex<Vec<String>>>,
    conns: Arc<Mutex<Conns>>,
}

/// A worker's connections.
#[derive(Debug, Default)]
struct Conns {
    own: Option<Conn>,
    /// The primary's address and a connection to it.
    primary: Option<(String, Option<Conn>)>,
}

impl MariaDb {
    pub fn new(read_mode: ReadMode, timeout: Duration) -> Result<MariaDb, Error> {
        Ok(MariaDb {
            read_mode,
            timeout,
            own: None,
            members: Arc::default(),
            conns: Arc::default(),
        })
    }

    async fn run(&self, call: &Call) -> Outcome {
        let to_primary = !call.is_read() || self.read_mode == ReadMode::Primary;
        let mut conns = self.conns.lock().await;
        let (addr, slot) = if to_primary {
            if conns.primary.is_none() {
                match self.find_primary().await {
                    Ok(addr) => conns.primary = Some((addr, None)),
                    Err(why) => return Outcome::Refused(why),
                }
            }
            let Some((addr, slot)) = conns.primary.as_mut() else {
                return Outcome::Refused("no primary".into());
            };
            (addr.clone(), slot)
        } else {
            let Some(own) = &self.own else {
                return Outcome::Fail("client not opened".into());
            };
            (own.clone(), &mut conns.own)
        };
        if slot.is_none() {
            match tokio::time::timeout(self.timeout, connect(&addr)).await {
                Ok(Ok(c)) => *slot = Some(c),
                Ok(Err(e)) => {
                    conns.forget(to_primary);
                    return Outcome::Refused(format!("connect to {addr}: {e}"));
                }
                Err(_) => {
                    conns.forget(to_primary);
                    return Outcome::Refused(format!(
                        "connect to {addr}: no answer after {:?}",
                        self.timeout
                    ));
                }
            }
        }
        let Some(conn) = slot.as_mut() else {
            return Outcome::Refused("no connection".into());
        };
        let (outcome, read_only) = match tokio::time::timeout(self.timeout, op(conn, call)).await {
            Ok(Ok(o)) => return o,
            Ok(Err(e)) => (classify(call, &e), is_read_only(&e)),
            Err(_) => (
                Outcome::unknown(call, format!("timeout after {:?}", self.timeout)),
                false,
            ),
        };
        // The connection is gone or in doubt, or the primary moved: start afresh.
        let keep = matches!(&outcome, Outcome::Fail(_)) && !read_only;
        if !keep {
            conns.forget(to_primary);
        }
        outcome
    }

    /// The primary's `ADDR:PORT`: the member named by the highest epoch among the
    /// members that answer. `Err` when none does (nothing was written).
    async fn find_primary(&self) -> Result<String, String> {
        let members = self.members.lock().map(|m| m.clone()).unwrap_or_default();
        let asks = members.iter().map(|m| async move {
            let ask = async {
                let mut c = connect(m).await?;
                let row: Option<(u64, String)> = c
                    .query_first(
                        "SELECT epoch, addr FROM splitbrain_lab.primary_member WHERE id = 1",
                    )
                    .await?;
                let _ = c.disconnect().await;
                Ok::<_, mysql_async::Error>(row)
            };
            match tokio::time::timeout(self.timeout, ask).await {
                Ok(Ok(row)) => Ok(row),
                Ok(Err(e)) => Err(format!("{m}: {e}")),
                Err(_) => Err(format!("{m}: no answer")),
            }
        });
        let answers = futures_util::future::join_all(asks).await;
        let port = members
            .first()
            .and_then(|m| m.rsplit_once(':'))
            .map_or("3306", |(_, p)| p)
            .to_owned();
        let best = answers
            .iter()
            .filter_map(|a| a.as_ref().ok().cloned().flatten())
            .max_by_key(|(epoch, _)| *epoch);
        match best {
            Some((_, addr)) => Ok(format!("{addr}:{port}")),
            None => Err(format!(
                "no member names a primary ({})",
                answers
                    .iter()
                    .filter_map(|a| a.as_ref().err().cloned())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
}

impl Conns {
    fn forget(&mut self, primary: bool) {
        if primary {
            self.primary = None;
        } else {
            self.own = None;
        }
    }
}

/// The server refused a write because the member is read-only (a replica, or an old
/// primary the failover fenced): the connection is fine, the primary moved.
fn is_read_only(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == READ_ONLY)
}

async fn connect(addr: &str) -> Result<Conn, mysql_async::Error> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "3306"));
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().unwrap_or(3306))
        .user(Some(USER))
        .pass(Some(USER))
        .db_name(Some(DATABASE))
        // Affected rows count the rows matched: a cas whose new value equals the
        // old one still matched its row.
        .client_found_rows(true)
        .prefer_socket(false);
    Conn::new(opts).await
}

/// One call on one connection. `Err`: the driver's error, classified by the caller.
async fn op(conn: &mut Conn, call: &Call) -> Result<Outcome, mysql_async::Error> {
    let written = |version| Outcome::Ok {
        value: Value::Null,
        version,
    };
    match call {
        Call::Read { key } => {
            let v: Option<i64> = conn
                .exec_first("SELECT v FROM registers WHERE k = ?", (key,))
                .await?;
            Ok(Outcome::ok(v.map_or(Value::Null, Value::from)))
        }
        Call::Write { key, value } => {
            conn.exec_drop(
                "INSERT INTO registers (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)",
                (key, value),
            )
            .await?;
            Ok(written(last_gtid(conn).await))
        }
        Call::Cas { key, old, new } => {
            let done = match old {
                Some(old) => {
                    conn.exec_drop(
                        "UPDATE registers SET v = ? WHERE k = ? AND v = ?",
                        (new, key, old),
                    )
                    .await?;
                    conn.affected_rows() == 1
                }
                None => match conn
                    .exec_drop("INSERT INTO registers (k, v) VALUES (?, ?)", (key, new))
                    .await
                {
                    Ok(()) => true,
                    Err(mysql_async::Error::Server(e)) if e.code == DUPLICATE => false,
                    Err(e) => return Err(e),
                },
            };
            Ok(match done {
                true => written(last_gtid(conn).await),
                false => Outcome::Fail(format!(
                    "cas: {key} did not hold {}",
                    old.map_or("null".into(), |o| o.to_string())
                )),
            })
        }
        Call::AddElement { key, value } => {
            match conn
                .exec_drop("INSERT INTO sets (k, e) VALUES (?, ?)", (key, value))
                .await
            {
                Ok(()) => Ok(written(last_gtid(conn).await)),
                // Already there (a retried add): the element is in the set.
                Err(mysql_async::Error::Server(e)) if e.code == DUPLICATE => {
                    Ok(Outcome::ok(Value::Null))
                }
                Err(e) => Err(e),
            }
        }
        Call::ReadSet { key } => {
            let elements: Vec<i64> = conn
                .exec("SELECT e FROM sets WHERE k = ? ORDER BY e", (key,))
                .await?;
            Ok(Outcome::ok(Value::from(elements)))
        }
        other => Ok(Outcome::Fail(format!(
            "the mariadb client has no `{}` for this workload",
            other.f()
        ))),
    }
}

/// The sequence number of the session's last write (`@@last_gtid`, `0-1-42`).
async fn last_gtid(conn: &mut Conn) -> Option<u64> {
    let gtid: Option<String> = conn.query_first("SELECT @@last_gtid").await.ok()?;
    gtid_seq_no(&gtid?)
}

/// `DOMAIN-SERVER-SEQ` to `SEQ`.
fn gtid_seq_no(gtid: &str) -> Option<u64> {
    let mut parts = gtid.trim().splitn(3, '-');
    let (_, _, seq) = (parts.next()?, parts.next()?, parts.next()?);
    seq.parse().ok()
}

/// A driver error after the statement was (or may have been) sent.
fn classify(call: &Call, e: &mysql_async::Error) -> Outcome {
    match e {
        mysql_async::Error::Server(s) if !CONNECTION_GONE.contains(&s.code) => {
            Outcome::Fail(format!("ERROR {} ({}): {}", s.code, s.state, s.message))
        }
        e => Outcome::unknown(call, crate::call::error_chain(e)),
    }
}

/// `ADDR:PORT` from a member's URL (`mysql://ADDR:PORT`, or `ADDR:PORT`).
fn host_of(node: &str) -> Result<String, Error> {
    crate::call::addr_port(node, "mysql", "mariadb")
}

impl Client for MariaDb {
    fn open(&self, node: &str) -> Result<Box<dyn Client>, Error> {
        let own = host_of(node)?;
        if let Ok(mut members) = self.members.lock() {
            if !members.contains(&own) {
                members.push(own.clone());
            }
        }
        Ok(Box::new(MariaDb {
            read_mode: self.read_mode,
            timeout: self.timeout,
            own: Some(own),
            members: self.members.clone(),
            conns: Arc::default(),
        }))
    }

    fn invoke<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.run(call).await.for_call(call) })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut conns = self.conns.lock().await;
            let own = conns.own.take();
            let primary = conns.primary.take().and_then(|(_, c)| c);
            for c in own.into_iter().chain(primary) {
                let _ = tokio::time::timeout(self.timeout, c.disconnect()).await;
            }
        })
    }

    fn supports(&self, f: &str) -> bool {
        matches!(f, "read" | "write" | "cas" | "add")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_urls_are_mysql_addresses() {
        assert_eq!(host_of("mysql://10.77.1.1:3306").unwrap(), "10.77.1.1:3306");
        assert_eq!(host_of("10.77.1.1:3306").unwrap(), "10.77.1.1:3306");
        let e = host_of("http://10.77.1.1:2379").unwrap_err().to_string();
        assert!(e.contains("mysql://"), "{e}");
        assert!(host_of("mysql://10.77.1.1").is_err());
    }

    #[test]
    fn gtids_give_their_sequence_number() {
        assert_eq!(gtid_seq_no("0-1-42"), Some(42));
        assert_eq!(gtid_seq_no(""), None);
        assert_eq!(gtid_seq_no("0-1"), None);
    }

    #[test]
    fn only_server_answers_are_fails() {
        let write = Call::Write {
            key: "k".into(),
            value: 1,
        };
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: "HY000".into(),
            })
        };
        let read_only = server(READ_ONLY);
        assert!(is_read_only(&read_only));
        assert!(matches!(classify(&write, &read_only), Outcome::Fail(_)));
        assert!(!is_read_only(&server(1062)));
        assert!(matches!(classify(&write, &server(1927)), Outcome::Info(_)));
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(matches!(classify(&write, &io), Outcome::Info(_)));
        let read = Call::Read { key: "k".into() };
        assert!(matches!(classify(&read, &io), Outcome::Fail(_)));
    }

    #[tokio::test]
    async fn nothing_listening_is_a_refusal() {
        let client = MariaDb::new(ReadMode::Primary, Duration::from_secs(2)).unwrap();
        let bound = client.open("mysql://127.0.0.1:1").unwrap();
        let o = bound.invoke(&Call::Read { key: "k".into() }).await;
        assert!(matches!(o, Outcome::Refused(_)), "{o:?}");
    }
}
