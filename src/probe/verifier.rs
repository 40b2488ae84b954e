//! The recording server-certificate verifier.
