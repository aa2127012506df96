//! Every integration test in one binary, so the AWS SDK is linked once.
//!
//! - `aws_mocks`, `health_adapters`: the AWS adapters against `aws-smithy-mocks` sequences
//!   (throttling, 5xx, paging, PENDING changes; ARC zonal shift, which moto lacks).
//! - `aws_moto`, `evacuation_moto`: the adapters and whole runs against moto (`moto_server` on a
//!   loopback port the test starts itself; `MOTO_SERVER` names the binary).
//! - `dns_region`: `dns.update` across regions against moto: latency, failover and weighted
//!   record sets with health checks kept, the dry run's exact calls, rollback, bad input.
//! - `safety_moto`: the real binary against moto behind the counting proxy: overlapping runs,
//!   fencing, kill -9 at every mutating call then resume, lost answers, approvals.
//! - `engine_faults`, `traffic_loop`, `health_probes`: the engine and probes against fakes and
//!   loopback servers.
//! - `sim_scenarios`, `sim_shedding`: the simulator, many seeds; `sim_scale`: generated
//!   topologies, paged reads, the history's deltas; `sim_actors`: several runs,
//!   kills and resumes at once in one simulated world, properties checked over many seeds;
//!   `sim_arc`: ARC zonal shifts in an evacuation, its failback, lost answers and expiry.
//! - `cli_e2e`, `health_docs`: the real binary and the docs' examples; `iam_policy`: the
//!   least-privilege policies and the operations table held equal to the adapters; `concurrency`: many
//!   processes of the binary writing one journal at once.
//! - `serve`: `failover serve` over a loopback socket: runs started and followed by their
//!   event stream, approvals, rejections, aborts, shutdown and resume, refusals that change
//!   nothing, concurrent starts (409 with the lease holder), the metrics parsed, the watch
//!   loop and readiness in the service.
//! - `console`: the web console in headless Chromium, driven over the DevTools protocol.
//! - `common`: the servers and helpers the tests share.

mod common;

mod audit;
mod aws_mocks;
mod aws_moto;
mod cli_e2e;
mod concurrency;
mod console;
mod discover_moto;
mod dns_region;
mod drills;
mod engine_faults;
mod evacuation_moto;
mod fuzz;
mod global_region;
mod health_adapters;
mod health_docs;
mod health_probes;
mod iam_policy;
mod onboarding;
mod proxy_checks;
mod safety_moto;
mod secrets;
mod serve;
mod sim_actors;
mod sim_arc;
mod sim_detection;
mod sim_region;
mod sim_scale;
mod sim_scenarios;
mod sim_shedding;
mod tidy;
mod traffic_loop;
