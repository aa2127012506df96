//! Loading input for a use case: environment (a simulated one becomes the environment its
//! topology describes), runbook, parameters, bound steps. Every problem at once; nothing is
//! called here.

use super::AppError;
use crate::cloud::sim::{self, Fault, Topology};
use crate::diag::{Diagnostic, Diagnostics};
use crate::env::Environment;
use crate::runbook::bind::{self, BoundStep, RunContext};
use crate::runbook::Runbook;
use std::path::Path;

/// Where a run's calls go: AWS (a real account or a local peer, as the environment says), or
/// the simulated cloud of a topology.
pub enum Target {
    Aws,
    Simulated(Box<SimTarget>),
}

/// A simulated environment's world: topology, faults, seed.
pub struct SimTarget {
    pub topology: Topology,
    pub faults: Vec<Fault>,
    pub seed: u64,
}

impl Target {
    pub fn simulated(&self) -> Option<&SimTarget> {
        match self {
            Target::Aws => None,
            Target::Simulated(t) => Some(t),
        }
    }
}

/// Load the runbook an entry of an environment file names (`what`: "drill `x`",
/// "[health.trigger]"; `at`: where its `runbook` key is). A file that cannot be read is a
/// problem at the entry, saying which directory the path is relative to (`run_by`: the
/// commands that start it); a runbook that does not parse keeps its own places.
pub fn entry_runbook(
    path: &str,
    what: &str,
    at: &crate::diag::Place,
    run_by: &str,
) -> Result<Runbook, Diagnostics> {
    Runbook::load(Path::new(path)).map_err(|d| {
        if d.0.iter().any(|x| x.line > 0) {
            return d;
        }
        let why = d.0.first().map(|x| x.message.clone()).unwrap_or_default();
        let mut out = Diagnostics::default();
        out.push(at.diag(
            format!("{what}: runbook `{path}`: {why}"),
            Some(format!("the path is relative to the directory {run_by} run in (the repository's root), e.g. runbooks/az-evacuation.toml")),
        ));
        out
    })
}

/// An environment and where its calls go.
pub struct LoadedEnv {
    pub env: Environment,
    pub target: Target,
}

/// Load an environment; a simulated one becomes the environment its topology describes.
pub fn load_env(config_dir: &Path, name: &str) -> Result<LoadedEnv, Diagnostics> {
    let env = Environment::load(config_dir, name)?;
    let Some(spec) = env.simulated.clone() else {
        return Ok(LoadedEnv {
            env,
            target: Target::Aws,
        });
    };
    let file = |m: String| -> Diagnostics {
        Diagnostic {
            file: Environment::path_for(config_dir, name)
                .display()
                .to_string(),
            line: 0,
            col: 0,
            message: m,
            hint: None,
        }
        .into()
    };
    let topology = Topology::load(&spec.topology).map_err(|e| file(e.to_string()))?;
    let faults = sim::parse_faults(&spec.faults).map_err(|es| {
        file(
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let mut derived = sim::environment_for(&topology);
    derived.name = env.name.clone();
    derived.simulated = Some(spec.clone());
    derived.drills = env.drills.clone();
    let seed = spec.seed.or(topology.seed).unwrap_or(1);
    Ok(LoadedEnv {
        env: derived,
        target: Target::Simulated(Box::new(SimTarget {
            topology,
            faults,
            seed,
        })),
    })
}

/// A runbook bound to an environment with its parameters: ready to plan or run.
pub struct Bound {
    pub runbook: Runbook,
    pub loaded: LoadedEnv,
    pub params: bind::Params,
    pub steps: Vec<BoundStep>,
}

/// Runbook + environment + parameters -> bound steps, or every problem at once.
pub fn load_bound(
    config_dir: &Path,
    runbook: &Path,
    env_name: &str,
    params: &[(String, String)],
    run: &RunContext,
) -> Result<Bound, AppError> {
    let (rb, loaded) = match (Runbook::load(runbook), load_env(config_dir, env_name)) {
        (Ok(rb), Ok(env)) => (rb, env),
        (rb, env) => {
            let mut diags = Diagnostics::default();
            if let Err(d) = rb {
                diags.extend(d);
            }
            if let Err(d) = env {
                diags.extend(d);
            }
            return Err(diags.into());
        }
    };
    let params = bind::bind_params(&rb, &loaded.env, params)?;
    let steps = bind::bind(&rb, &loaded.env, &params, run)?;
    Ok(Bound {
        runbook: rb,
        loaded,
        params,
        steps,
    })
}

/// Who acts: the name given, else `$FAILOVER_USER`, else `$USER`, else `unknown`.
pub fn initiator(by: Option<String>) -> String {
    by.or_else(|| std::env::var("FAILOVER_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}
