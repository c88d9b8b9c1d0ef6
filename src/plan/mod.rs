//! Pure logic with no I/O: naming, plans and the rules AWS would enforce.
pub mod alarms;
pub mod alias;
pub mod batch;
pub mod deploy;
pub mod evidence;
pub mod lambda;
pub mod model;
pub mod naming;
pub mod policy;
pub mod predlog;
pub mod record;
pub mod report;
pub mod rollout;
pub mod shadow;
pub mod stats;
pub mod terraform;
pub mod up;
