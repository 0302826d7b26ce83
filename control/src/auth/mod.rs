//! Who may drive the appliance: SigV4 for the two AWS faces, an API token
//! for the F5 face.

pub mod sigv4;
