//! plant-sim's parts (feature `sim`): the gpio-sim chip, the real-time
//! loop and the command line. The guest tests use [`chip`] to find the
//! chip and read its lines as an oracle independent of the control app.

pub mod chip;
pub mod options;
pub mod run;
