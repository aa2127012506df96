//! `[health]` section of an environment file. (Being built: see issue 4.)

use crate::diag::{Diagnostics, SourceFile};
use crate::tomlx::SVal;
use crate::types::Zone;

/// The health configuration of an environment.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HealthConfig {}

/// Parse the `[health]` table of an environment file, reporting every problem into `d`.
pub fn parse(src: &SourceFile, v: &SVal, zones: &[Zone], d: &mut Diagnostics) -> Option<HealthConfig> {
    let _ = (src, v, zones, d);
    Some(HealthConfig {})
}
