//! Jobs and what they are made of.

use serde::{Deserialize, Serialize};

/// A placement rule: `LTarget Operand RTarget`, e.g. `${attr.kernel.name} = linux`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Constraint {
    pub l_target: String,
    pub operand: String,
    pub r_target: String,
}

/// A placement preference: a constraint with a weight in `-100..=100`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Affinity {
    pub l_target: String,
    pub operand: String,
    pub r_target: String,
    pub weight: i8,
}
