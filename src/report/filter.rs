//! One filter of a report query, as the configuration writes it
//! (`filters: ["channel=CNN"]`) and as it is sent (`channel=CNN`).

/// `dimension=value`, or `dimension!=value` when negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dimension: String,
    pub value: String,
    pub negated: bool,
}
