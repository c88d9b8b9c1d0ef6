//! Pure logic with no I/O: naming, plans and the rules AWS would enforce.
pub mod alarms;
pub mod alias;
pub mod deploy;
pub mod lambda;
pub mod model;
pub mod naming;
pub mod policy;
pub mod rollout;
pub mod up;
