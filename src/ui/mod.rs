//! Everything the user sees: the printer, progress bars and tables.
mod printer;
pub mod progress;
pub mod report;
pub mod table;

pub use indicatif::HumanBytes;
pub use printer::Printer;
