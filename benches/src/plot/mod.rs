//! `flowgate-plot`'s library side: PNG plots of `benches/results.json`
//! (written by `benches/run.py`). [`data`] owns the extraction of plottable
//! series from the JSON (pure functions: a missing or malformed part is a
//! reason to skip that plot, never a panic), [`render`] the drawing with
//! `plotters` into bitmaps, and the font it needs (DejaVu Sans, loaded at run
//! time so no system font library is linked).

pub mod data;
pub mod render;

/// Error type of the plotting: anything printable.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result type of the plotting.
pub type Result<T> = std::result::Result<T, Error>;
