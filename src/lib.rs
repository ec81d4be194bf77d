pub mod clock;
pub mod config;
pub mod export;
pub mod names;
pub mod report;
