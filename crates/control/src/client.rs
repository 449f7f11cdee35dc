//! Clients as plug-ins: each [`ClientKind`] says which databases and read modes it
//! supports and how it is built; [`CLIENTS`] lists them. What a client does with a
//! call is `call.rs` (the [`Client`] trait, [`Call`], [`Outcome`]), re-exported here.

pub use crate::call::{
    classify_transport, error_chain, version_from_json, BoxFuture, Call, Client, Outcome, REFUSED,
};
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// What a client is built from: the read and write modes chosen (one of its
/// [`ClientKind::read_modes`] and [`ClientKind::write_modes`], the default when
/// `None`), the op timeout, and the description of a generic client
/// (`--client-config`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    pub read_mode: Option<String>,
    pub write_mode: Option<String>,
    pub timeout: Duration,
    pub config: Option<crate::http::HttpConfig>,
}

impl ClientOptions {
    pub fn new(timeout: Duration) -> ClientOptions {
        ClientOptions {
            read_mode: None,
            write_mode: None,
            timeout,
            config: None,
        }
    }
}

/// How a [`ClientKind`] builds its client from a read mode (valid, or `""` for none);
/// a write mode, if it has them, is in the options (checked).
type BuildFn = fn(&str, &ClientOptions) -> Result<Arc<dyn Client>, Error>;

/// A client as a plug-in: its name (`--client NAME`), the databases it speaks to, its
/// read modes, and how to build it. Every kind is in [`CLIENTS`].
#[derive(Debug)]
pub struct ClientKind {
    pub name: &'static str,
    /// The databases (the lab's plug-in names) it speaks to; empty: any, as its
    /// description says (a generic client).
    pub databases: &'static [&'static str],
    /// Its read modes, the default first; empty: it has none to choose.
    pub read_modes: &'static [&'static str],
    /// Its write modes, the default first; empty: it has none to choose.
    pub write_modes: &'static [&'static str],
    /// Whether it needs a description (`--client-config`).
    pub needs_config: bool,
    build: BuildFn,
}

/// Every client kind, the default first.
pub const CLIENTS: &[ClientKind] = &[
    ClientKind {
        name: "etcd-v3",
        databases: &["etcd"],
        read_modes: &["linearizable", "serializable"],
        write_modes: &[],
        needs_config: false,
        build: |mode, o| {
            let mode = match mode {
                "serializable" => crate::etcd_v3::ReadMode::Serializable,
                _ => crate::etcd_v3::ReadMode::Linearizable,
            };
            Ok(Arc::new(crate::etcd_v3::EtcdV3::new(mode, o.timeout)?))
        },
    },
    ClientKind {
        name: "etcd-v2",
        databases: &["etcd"],
        read_modes: &["quorum", "local"],
        write_modes: &[],
        needs_config: false,
        build: |mode, o| {
            let config = crate::http::HttpConfig::etcd_v2(mode == "quorum");
            Ok(Arc::new(crate::http::HttpClient::new(config, o.timeout)?))
        },
    },
    ClientKind {
        name: "zookeeper",
        databases: &["zookeeper"],
        read_modes: &["plain", "sync"],
        write_modes: &[],
        needs_config: false,
        build: |mode, o| {
            let mode = match mode {
                "sync" => crate::zookeeper::ReadMode::Sync,
                _ => crate::zookeeper::ReadMode::Plain,
            };
            Ok(Arc::new(crate::zookeeper::ZooKeeper::new(mode, o.timeout)?))
        },
    },
    ClientKind {
        name: "mariadb",
        databases: &["mariadb"],
        read_modes: &["primary", "replica"],
        write_modes: &[],
        needs_config: false,
        build: |mode, o| {
            let mode = match mode {
                "replica" => crate::mariadb::ReadMode::Replica,
                _ => crate::mariadb::ReadMode::Primary,
            };
            Ok(Arc::new(crate::mariadb::MariaDb::new(mode, o.timeout)?))
        },
    },
    ClientKind {
        name: "redis",
        databases: &["redis"],
        read_modes: &["primary", "replica"],
        write_modes: &["plain", "wait"],
        needs_config: false,
        build: |mode, o| {
            let read = match mode {
                "replica" => crate::redis::ReadMode::Replica,
                _ => crate::redis::ReadMode::Primary,
            };
            let write = match o.write_mode.as_deref() {
                Some("wait") => crate::redis::WriteMode::Wait,
                _ => crate::redis::WriteMode::Plain,
            };
            Ok(Arc::new(crate::redis::Redis::new(read, write, o.timeout)?))
        },
    },
    ClientKind {
        name: "http",
        databases: &[],
        read_modes: &[],
        write_modes: &[],
        needs_config: true,
        build: |_, o| {
            let config = o
                .config
                .clone()
                .ok_or(Error::ClientNeedsConfig { client: "http" })?;
            Ok(Arc::new(crate::http::HttpClient::new(config, o.timeout)?))
        },
    },
];

impl ClientKind {
    /// The client used for database `db` when none is named: the first kind made
    /// for it alone (etcd: etcd-v3, zookeeper: zookeeper); `None` when no kind
    /// names it (a generic client then needs its description).
    pub fn default_for(db: &str) -> Option<&'static ClientKind> {
        CLIENTS.iter().find(|k| k.databases.contains(&db))
    }

    /// The kind called `name`, or an error listing the known ones.
    pub fn named(name: &str) -> Result<&'static ClientKind, Error> {
        CLIENTS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| Error::UnknownClient {
                name: name.to_owned(),
                known: CLIENTS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The read mode used when none is chosen; `None` for a client with none.
    pub fn default_read_mode(&self) -> Option<&'static str> {
        self.read_modes.first().copied()
    }

    /// Whether it speaks to database `db`.
    pub fn supports_db(&self, db: &str) -> bool {
        self.databases.is_empty() || self.databases.contains(&db)
    }

    /// The client, after checking that it speaks to `db` (`None`: the nodes' database
    /// is not known) and knows the read mode asked for.
    pub fn build(&self, db: Option<&str>, o: &ClientOptions) -> Result<Arc<dyn Client>, Error> {
        if let Some(db) = db {
            if !self.supports_db(db) {
                return Err(Error::ClientDatabase {
                    client: self.name,
                    db: db.to_owned(),
                    supported: self.databases.join(", "),
                });
            }
        }
        let mode = match (&o.read_mode, self.default_read_mode()) {
            (Some(m), _) if self.read_modes.is_empty() => {
                return Err(Error::NoReadModes {
                    client: self.name,
                    mode: m.clone(),
                })
            }
            (Some(m), _) if !self.read_modes.contains(&m.as_str()) => {
                return Err(Error::UnknownReadMode {
                    client: self.name,
                    mode: m.clone(),
                    known: self.read_modes.join(", "),
                })
            }
            (Some(m), _) => m.as_str(),
            (None, default) => default.unwrap_or(""),
        };
        match &o.write_mode {
            Some(m) if self.write_modes.is_empty() => {
                return Err(Error::NoWriteModes {
                    client: self.name,
                    mode: m.clone(),
                })
            }
            Some(m) if !self.write_modes.contains(&m.as_str()) => {
                return Err(Error::UnknownWriteMode {
                    client: self.name,
                    mode: m.clone(),
                    known: self.write_modes.join(", "),
                })
            }
            _ => {}
        }
        (self.build)(mode, o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_say_which_databases_and_read_modes_they_support() {
        let o = |mode: Option<&str>| ClientOptions {
            read_mode: mode.map(str::to_owned),
            ..ClientOptions::new(Duration::from_secs(1))
        };
        let v3 = ClientKind::named("etcd-v3").unwrap();
        assert_eq!(v3.default_read_mode(), Some("linearizable"));
        assert!(v3.build(Some("etcd"), &o(Some("serializable"))).is_ok());
        let e = v3.build(Some("etcd"), &o(Some("quorum"))).err().unwrap();
        assert!(matches!(e, Error::UnknownReadMode { .. }), "{e}");
        assert!(e.to_string().contains("linearizable, serializable"), "{e}");
        let e = v3.build(Some("zookeeper"), &o(None)).err().unwrap();
        assert!(matches!(e, Error::ClientDatabase { .. }), "{e}");

        let v2 = ClientKind::named("etcd-v2").unwrap();
        assert_eq!(v2.default_read_mode(), Some("quorum"));
        assert!(!v2.build(None, &o(None)).unwrap().supports("add"));

        let http = ClientKind::named("http").unwrap();
        assert!(http.supports_db("anything") && http.default_read_mode().is_none());
        let e = http.build(None, &o(Some("local"))).err().unwrap();
        assert!(matches!(e, Error::NoReadModes { .. }), "{e}");
        let e = http.build(None, &o(None)).err().unwrap();
        assert!(matches!(e, Error::ClientNeedsConfig { .. }), "{e}");

        let zk = ClientKind::named("zookeeper").unwrap();
        assert_eq!(zk.default_read_mode(), Some("plain"));
        assert!(zk.build(Some("zookeeper"), &o(Some("sync"))).is_ok());
        let e = zk.build(Some("etcd"), &o(None)).err().unwrap();
        assert!(matches!(e, Error::ClientDatabase { .. }), "{e}");
        let e = zk.build(None, &o(Some("linearizable"))).err().unwrap();
        assert!(e.to_string().contains("plain, sync"), "{e}");
        assert_eq!(
            ClientKind::default_for("etcd").map(|k| k.name),
            Some("etcd-v3")
        );
        assert_eq!(
            ClientKind::default_for("zookeeper").map(|k| k.name),
            Some("zookeeper")
        );
        assert_eq!(
            ClientKind::default_for("mariadb").map(|k| k.name),
            Some("mariadb")
        );
        assert!(ClientKind::default_for("nosuch").is_none());
        assert_eq!(
            ClientKind::default_for("redis").map(|k| k.name),
            Some("redis")
        );
        let redis = ClientKind::named("redis").unwrap();
        let wait = ClientOptions {
            write_mode: Some("wait".into()),
            ..o(Some("replica"))
        };
        assert!(redis.build(Some("redis"), &wait).is_ok());
        let e = redis
            .build(
                Some("redis"),
                &ClientOptions {
                    write_mode: Some("sync".into()),
                    ..o(None)
                },
            )
            .err()
            .unwrap();
        assert!(e.to_string().contains("plain, wait"), "{e}");
        let e = v3.build(Some("etcd"), &wait).err().unwrap();
        assert!(
            matches!(
                e,
                Error::UnknownReadMode { .. } | Error::NoWriteModes { .. }
            ),
            "{e}"
        );
        let e = v3
            .build(
                Some("etcd"),
                &ClientOptions {
                    write_mode: Some("wait".into()),
                    ..o(None)
                },
            )
            .err()
            .unwrap();
        assert!(matches!(e, Error::NoWriteModes { .. }), "{e}");

        let e = ClientKind::named("nosuch").unwrap_err().to_string();
        assert!(
            e.contains("nosuch") && e.contains("etcd-v3, etcd-v2, zookeeper, mariadb, redis, http"),
            "{e}"
        );
    }
}
