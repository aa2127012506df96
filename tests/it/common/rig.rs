//! moto behind the counting proxy, with the HTTP sink and a config dir whose `local`
//! environment points at both, seeded with config/local.toml's topology; and the state of that
//! topology read straight from moto (not through the code under test).

use super::moto::MotoServer;
use super::proxy::CountingProxy;
use super::sink::Sink;
use super::topo::{self, TestConfig};
use std::collections::BTreeMap;

pub struct MotoRig {
    pub moto: MotoServer,
    pub proxy: CountingProxy,
    pub sink: Sink,
    pub cfg: TestConfig,
}

impl MotoRig {
    /// `settings`: lines replacing the environment's `poll_interval = "50ms"` (`None`: keep
    /// it). moto is seeded; the proxy's log is empty.
    pub async fn start(settings: Option<&str>) -> MotoRig {
        let moto = tokio::task::spawn_blocking(MotoServer::start)
            .await
            .unwrap();
        let proxy = CountingProxy::start(moto.endpoint()).await;
        let sink = Sink::start().await;
        let cfg = TestConfig::local(&proxy.endpoint(), &sink.url());
        if let Some(settings) = settings {
            let file = cfg.path().join("local.toml");
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains("poll_interval = \"50ms\""), "{text}");
            std::fs::write(&file, text.replace("poll_interval = \"50ms\"", settings)).unwrap();
        }
        let rig = MotoRig {
            moto,
            proxy,
            sink,
            cfg,
        };
        rig.reseed().await;
        rig
    }

    /// moto as freshly seeded, no fault armed, the proxy's log empty.
    pub async fn reseed(&self) {
        self.proxy.reset_faults();
        self.moto.reset().await;
        topo::seed(&self.cfg.env()).await;
        self.proxy.clear();
    }

    /// moto itself, not the proxy: what the tests read the state through.
    pub fn moto_url(&self) -> String {
        self.moto.endpoint()
    }
}

/// Zone of each Aurora cluster's writer, read straight from moto.
pub async fn writer_zones(moto: &str) -> BTreeMap<String, String> {
    let (rds, _) = topo::clients(moto).await;
    let clusters = rds.describe_db_clusters().send().await.unwrap();
    let instances = rds.describe_db_instances().send().await.unwrap();
    let zone_of: BTreeMap<String, String> = instances
        .db_instances()
        .iter()
        .map(|i| {
            (
                i.db_instance_identifier().unwrap().to_string(),
                i.availability_zone().unwrap_or("").to_string(),
            )
        })
        .collect();
    clusters
        .db_clusters()
        .iter()
        .map(|c| {
            let w = c
                .db_cluster_members()
                .iter()
                .find(|m| m.is_cluster_writer() == Some(true))
                .and_then(|m| m.db_instance_identifier())
                .unwrap_or("none");
            (
                c.db_cluster_identifier().unwrap().to_string(),
                zone_of.get(w).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// The A and CNAME record sets of shop.example.com, read straight from moto:
/// "name type [set]" -> (values, weight).
pub async fn record_sets(moto: &str) -> BTreeMap<String, (Vec<String>, Option<i64>)> {
    let (_, r53) = topo::clients(moto).await;
    let zones = r53
        .list_hosted_zones_by_name()
        .dns_name("shop.example.com.")
        .send()
        .await
        .unwrap();
    let id = zones.hosted_zones()[0].id().to_string();
    let sets = r53
        .list_resource_record_sets()
        .hosted_zone_id(id)
        .send()
        .await
        .unwrap();
    sets.resource_record_sets()
        .iter()
        .filter(|s| matches!(s.r#type().as_str(), "A" | "CNAME"))
        .map(|s| {
            let key = format!(
                "{} {}{}",
                s.name(),
                s.r#type().as_str(),
                s.set_identifier()
                    .map(|i| format!(" [{i}]"))
                    .unwrap_or_default()
            );
            let values = s
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect();
            (key, (values, s.weight()))
        })
        .collect()
}
